"""The hftel command's own argument handling."""
from processes import hftel


def test_demo_refuses_an_unknown_scenario_naming_the_known_ones(tmp_path):
    result = hftel("demo", "--scenario", "feed-gag", "--dir", str(tmp_path / "d"), "--segment", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "unknown scenario feed-gag; known: feed-gap, bus-overflow" in result.stderr
    assert not (tmp_path / "s").exists(), "nothing was started"


def test_demo_refuses_a_clear_time_before_the_injection(tmp_path):
    result = hftel("demo", "--scenario", "feed-gap", "--inject-after", "5", "--clear-after", "2",
                   "--segment", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "--clear-after (2) must be later than --inject-after (5)" in result.stderr


def test_every_subcommand_is_listed_in_the_help():
    result = hftel("--help")
    for command in ("demo", "inspect", "top", "config", "exporter", "audit", "migrate"):
        assert command in result.stdout
