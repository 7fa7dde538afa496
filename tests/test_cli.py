"""The hftel command."""
import subprocess
import sys


def test_demo_runs_an_engine_and_prints_live_snapshots(tmp_path):
    """`hftel demo` records in a child engine and prints snapshots with rates and quantiles."""
    result = subprocess.run(
        [sys.executable, "-m", "hftel", "demo", "--segment", str(tmp_path / "demo.seg"),
         "--duration", "1.5", "--interval", "0.5"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "engine live" in result.stdout
    assert 'demo_feed_events_total{type="trade"}' in result.stdout
    assert "p99" in result.stdout
    assert "/s" in result.stdout
    assert "status now closed" in result.stdout

