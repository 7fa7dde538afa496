"""Turns pytest-benchmark's JSON into docs/benchmarks.md.

    python bench/report.py bench/results.json docs/benchmarks.md
    python bench/report.py bench/results.json /tmp/overhead.json docs/benchmarks.md   # one file re-run

Given several JSON files, a benchmark of a later file replaces the one of the same name in an earlier
file (so one bench file can be re-run alone); the machine lines come from the first file, and every
other file that contributed is named with its own date and commit.

Every benchmark times rounds of one loop of N operations, N being in its extra_info. The per-operation
figure is the round's time divided by N, taken from the MIN over rounds (the round least disturbed by
other work on the machine; the median is shown beside it for the spread; the engine CPU overhead
section, bench/test_engine_overhead.py, uses medians of paired runs and says why). Python rows also get a net
figure, the gross minus the empty loop of the same shape, and the ratio reference / row (the row whose
extra_info has role "reference": prometheus_client for metrics, structlog's fast JSON set-up for the
audit and log rings). A row whose extra_info names `versus` (the label of another row, in its own
operation or in `versus_op`) also gets that like-for-like ratio, net of the loop.
Targets are judged on the min: the net figure for Python rows, the plain figure for C rows.
"""
from __future__ import annotations

import json
import platform
import sys
from datetime import datetime
from pathlib import Path


def per_op_ns(benchmark: dict, statistic: str) -> float:
    return benchmark["stats"][statistic] / benchmark["extra_info"]["n"] * 1e9


def ns(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "—"
    value = numerator / denominator
    return f"{value:.0f}x" if value >= 10 else f"{value:.1f}x"


def verdict(value: float | None, target: float | None) -> str:
    if target is None or value is None:
        return "—"
    return "pass" if value <= target else "**MISS**"


def label(benchmark: dict) -> str:
    info = benchmark["extra_info"]
    return info["variant"] if info["library"] == "baseline" else f"{info['library']}, {info['variant']}"


def machine_lines(results: dict) -> list[str]:
    machine = results.get("machine_info", {})
    extra = machine.get("hftel_bench", {})
    cpu = extra.get("model_name") or machine.get("cpu", {}).get("brand_raw") or platform.processor() or "unknown"
    cpus = extra.get("logical_cpus") or machine.get("cpu", {}).get("count") or "?"
    clock = f", {float(extra['cpu_mhz']):.0f} MHz nominal" if extra.get("cpu_mhz") else ""
    python = f"{machine.get('python_implementation', 'Python')} {machine.get('python_version', '?')}"
    system = f"{machine.get('system', '')} {machine.get('release', '')}".strip()
    when = results.get("datetime", "")
    try:
        when = datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        pass
    commit = results.get("commit_info", {})
    commit_text = commit.get("id", "?")[:10] + (" (uncommitted changes)" if commit.get("dirty") else "")
    versions = ", ".join(f"{name} {version}" for name, version in extra.get("versions", {}).items())
    load = ""
    if extra.get("load_average_at_start"):
        start = extra["load_average_at_start"][0]
        end = (extra.get("load_average_at_end") or [float("nan")])[0]
        load = f"; 1-minute load average {start:.2f} at the start, {end:.2f} at the end"
    lines = [
        f"- Date: {when}, commit {commit_text}",
        f"- Machine: {cpu}, {cpus} logical CPUs{clock}; {system}{load}",
        f"- Python: {python}; C compiler: {extra.get('cc') or machine.get('python_compiler', '?')}",
    ]
    if versions:
        lines.append(f"- Versions: {versions}")
    return lines


def find_row(rows: list[dict], op: str, wanted: str) -> dict | None:
    """The row of operation `op` whose label is `wanted`."""
    return next((row for row in rows if row["extra_info"]["op"] == op and label(row) == wanted), None)


def net_ns(row: dict, rows: list[dict]) -> float | None:
    """A Python row's min per-op time net of the empty loop of its operation; None without one."""
    op = row["extra_info"]["op"]
    baseline = next((other for other in rows
                     if other["extra_info"]["op"] == op and other["extra_info"].get("role") == "baseline"), None)
    return per_op_ns(row, "min") - per_op_ns(baseline, "min") if baseline else None


def versus(row: dict, python_rows: list[dict]) -> tuple[dict | None, float | None]:
    """The row `row` is compared with like for like, and that row's net ns/op."""
    info = row["extra_info"]
    if not info.get("versus"):
        return None, None
    other = find_row(python_rows, info.get("versus_op", info["op"]), info["versus"])
    return other, net_ns(other, python_rows) if other else None


def python_section(op: str, rows: list[dict], python_rows: list[dict]) -> list[str]:
    baseline = next((row for row in rows if row["extra_info"].get("role") == "baseline"), None)
    reference = next((row for row in rows if row["extra_info"].get("role") == "reference"), None)
    loop = per_op_ns(baseline, "min") if baseline else None
    ref_gross = per_op_ns(reference, "min") if reference else None
    ref_net = ref_gross - loop if reference and loop is not None else None
    ref_name = reference["extra_info"]["library"] if reference else "reference"
    anchors = any(row["extra_info"].get("anchor_ns") for row in rows)
    like_for_like = any(row["extra_info"].get("versus") for row in rows)
    n = rows[0]["extra_info"]["n"]
    intro = f"N = {n:,} calls per round. Net = gross minus the empty loop ({ns(loop)} ns per iteration)."
    if reference:
        intro += f" Reference: {label(reference)}."
    header = ["Implementation", "gross ns/op (min)", "gross ns/op (median)", "net ns/op (min)",
              f"{ref_name} / this, gross", f"{ref_name} / this, net"]
    if anchors:
        header += ["reference-machine anchor ns", "this run / anchor"]
    if like_for_like:
        header += ["like for like, net"]
    header += ["target (net ns)", "result"]
    lines = [
        f"### Python: {op}",
        "",
        intro,
        "",
        "| " + " | ".join(header) + " |",
        "|---" + "|--:" * (len(header) - 2) + "|:-:|",
    ]
    for row in rows:
        info = row["extra_info"]
        gross = per_op_ns(row, "min")
        is_baseline = info.get("role") == "baseline"
        net = None if is_baseline or loop is None else gross - loop
        anchor = info.get("anchor_ns")
        target = info.get("target_ns")
        cells = [
            label(row),
            ns(gross),
            ns(per_op_ns(row, "median")),
            "—" if is_baseline else ns(net),
            "—" if is_baseline else ratio(ref_gross, gross),
            "—" if is_baseline else ratio(ref_net, net),
        ]
        if anchors:
            cells += [ns(anchor) if anchor else "—", ratio(gross, anchor) if anchor else "—"]
        if like_for_like:
            other, other_net = versus(row, python_rows)
            cells += [f"{ratio(other_net, net)} faster than {other['extra_info']['variant']}" if other else "—"]
        cells += [f"<= {target}" if target is not None else "—", verdict(net, target)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def c_section(rows: list[dict]) -> list[str]:
    store = next((row for row in rows if row["extra_info"]["op"] == "baseline: plain store"), None)
    store_ns = per_op_ns(store, "min") if store else None
    n = rows[0]["extra_info"]["n"]
    lines = [
        "### C: record calls from Cython, in a `with nogil` loop",
        "",
        f"N = {n:,} calls per round (bench/cloops.pyx, -O3).",
        "",
        "| Operation | ns/op (min) | ns/op (median) | / plain store | target (ns) | result |",
        "|---|--:|--:|--:|--:|:-:|",
    ]
    for row in rows:
        info = row["extra_info"]
        value = per_op_ns(row, "min")
        target = info.get("target_ns")
        name = info["op"] if info["op"].startswith("baseline") else f"{info['op']}, {info['variant']}"
        lines.append("| " + " | ".join([
            name,
            ns(value),
            ns(per_op_ns(row, "median")),
            ratio(value, store_ns) if row is not store else "—",
            f"<= {target}" if target is not None else "—",
            verdict(value, target),
        ]) + " |")
    return lines + [""]


def c_audit_section(rows: list[dict], python_rows: list[dict]) -> list[str]:
    clock = next((row for row in rows if row["extra_info"].get("role") == "clock"), None)
    written = [row for row in rows if row is not clock]
    n = rows[0]["extra_info"]["n"]
    others = [versus(row, python_rows) for row in written]
    other = next((found for found, _ in others if found), None)
    ratio_name = f"{other['extra_info']['library']}, {other['extra_info']['variant']}" if other else "structlog"
    lines = [
        "### C: audit rows from Cython, in a `with nogil` loop",
        "",
        f"N = {n:,} rows per round (bench/cloops.pyx, -O3), each an hftel_audit_orders_row filled in full",
        "(the ten fields of the Python audit row) and written by hftel_audit_write into the 16 MiB audit ring,",
        f"drained between rounds. The ratio column divides the net ns/op of {ratio_name}",
        "logging the same ten fields from Python (the Python audit row section) by this row's ns/op.",
        "",
        f"| Operation | ns/op (min) | ns/op (median) | {ratio_name} / this | target (ns) | result |",
        "|---|--:|--:|--:|--:|:-:|",
    ]
    for row, (_, other_net) in zip(written, others):
        info = row["extra_info"]
        value = per_op_ns(row, "min")
        target = info.get("target_ns")
        lines.append("| " + " | ".join([
            f"{info['op']}, {info['variant']}",
            ns(value),
            ns(per_op_ns(row, "median")),
            ratio(other_net, value),
            f"<= {target}" if target is not None else "—",
            verdict(value, target),
        ]) + " |")
    if clock:
        lines.append(f"| {clock['extra_info']['op']} (reference) | {ns(per_op_ns(clock, 'min'))} "
                     f"| {ns(per_op_ns(clock, 'median'))} | — | — | — |")
    given = next((row for row in written if row["extra_info"]["variant"] == "ts given"), None)
    stamped = next((row for row in written if row["extra_info"]["variant"].startswith("ts=0")), None)
    if given and stamped and clock:
        lines += ["", f"ts=0 costs {ns(per_op_ns(stamped, 'min') - per_op_ns(given, 'min'))} ns more a row than ts "
                      f"given; a bare clock_gettime(CLOCK_REALTIME) costs {ns(per_op_ns(clock, 'min'))} ns here."]
    return lines + [""]


def ms(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def render_section(rows: list[dict]) -> list[str]:
    """The exporter's scrape path: one render of the same series per round, in milliseconds."""
    reference = next((row for row in rows if row["extra_info"].get("role") == "reference"), None)
    ref_ms = reference["stats"]["min"] * 1e3 if reference else None
    samples = rows[0]["extra_info"]["samples"]
    lines = [
        f"### Exporter: {rows[0]['extra_info']['op']}",
        "",
        f"One render of the same {samples:,} sample lines per round (bench/test_exposition.py): counters, int and",
        "float gauges and explicit-bucket histograms, read from a live segment by hftel and from a",
        "CollectorRegistry by prometheus_client (its `_created` series turned off, so both write the same lines).",
        "`Exporter.metrics()` is the whole scrape the HTTP server answers: rescan, render, self-metrics.",
        "",
        "| Implementation | ms per render (min) | ms (median) | prometheus_client / this | target (ms) | result |",
        "|---|--:|--:|--:|--:|:-:|",
    ]
    for row in rows:
        info = row["extra_info"]
        value = row["stats"]["min"] * 1e3
        target = info.get("target_ms")
        lines.append("| " + " | ".join([
            label(row), ms(value), ms(row["stats"]["median"] * 1e3),
            "—" if row is reference else ratio(ref_ms, value),
            f"<= {target}" if target is not None else "—",
            "—" if target is None else ("pass" if value <= target else "**MISS**"),
        ]) + " |")
    return lines + [""]


def drain_section(rows: list[dict]) -> list[str]:
    """The drain: a sustained flow of audit rows from a C engine loop through the real exporter."""
    lines = [
        "### Exporter: audit rows engine -> ring -> spool -> embedded ClickHouse, sustained",
        "",
        "bench/test_drain_throughput.py: a C loop writes audit_orders rows at a fixed offered rate into a",
        "segment on /dev/shm while the `hftel exporter` process drains it (spool on disk, fsync per batch)",
        "into the embedded engine. Rows/s counts from the first row written to the last row in ClickHouse;",
        "lag is how long after the last write that was. CPU is the exporter process's, over the whole run,",
        "in cores (1.0 = one core busy); the machine has the CPUs shown. Every row offered is checked to be in",
        "ClickHouse exactly once (count and distinct seq).",
        "",
        "| batch rows | offered rows/s | seconds | rows | rows/s landed | lag (s) | exporter CPU (cores) | CPUs | exactly once | target | result |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|:-:|",
    ]
    for row in rows:
        info = row["extra_info"]
        once = info["in_clickhouse"] == info["unique_seqs"] == info["written"] and info["refused"] == 0
        lines.append("| " + " | ".join([
            f"{info.get('batch_rows', 100_000):,}", f"{info['offered_rate']:,}", f"{info['offered_seconds']:.0f}",
            f"{info['written']:,}", f"{info['rows_per_second']:,.0f}", f"{info['lag_seconds']:.1f}",
            f"{info['exporter_cpu_share']:.2f}", str(info["cpus"]), "yes" if once else "**NO**",
            f">= {info['target_rows_per_second']:,.0f}",
            "pass" if once and info["rows_per_second"] >= info["target_rows_per_second"] else "**MISS**",
        ]) + " |")
    return lines + [""]


def percent(value: float) -> str:
    return f"{100 * value:+.1f} %"


def overhead_verdict(interval: list[float], target_percent: float) -> str:
    """pass when the whole 90 % interval is under the target, MISS when it is all over, else unresolved."""
    low, high = (100 * value for value in interval)
    return "pass" if high < target_percent else "**MISS**" if low >= target_percent else "unresolved"


def overhead_section(row: dict) -> list[str]:
    """The reference engine's CPU with each telemetry variant, and the exporter's share (one benchmark)."""
    info = row["extra_info"]
    runs, exporter = info["runs"], info["exporter"]
    when = info.get("measured_at", "")
    try:
        when = datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        pass
    load = (info.get("load_average_at_start") or [float("nan")])[0]
    load_end = (info.get("load_average_at_end") or [float("nan")])[0]
    target, seeds = info["target_percent"], info["seeds_target_percent"]
    lines = [
        f"### Engine CPU overhead: the reference engine at {info['rate']:,} events/s",
        "",
        "bench/test_engine_overhead.py runs the reference engine of bench/reference_engine.py. Per market-data",
        "event it does fixed pure-Python work (a 10-level order book, imbalance, microprice, moving averages,",
        "a z-score over 64 mids) and records what a trading engine records: a counter, a latency histogram",
        "observe (two clock reads), a gauge; every 10th event an order intent (a counter and an audit row of",
        "ten fields); every 100th a log event. It handles the events due at each wake-up and sleeps 1 ms when",
        "none is due. Each variant is a process of its own, and its CPU time (user + system, every thread:",
        "hftel's heartbeat, prometheus_client's HTTP server) is read over each run. A round runs every",
        f"variant for {info['seconds']:g} s ({info['n']:,} events), in an order rotating round by round;",
        f"{info['rounds']} rounds. The prometheus_client + structlog engine serves its own /metrics and writes",
        "its audit rows and log events as JSON lines to a file (structlog's fast set-up, as above); the hftel",
        "engine's segment is served by a real `hftel exporter`. Both /metrics are scraped once a second.",
        "",
        "Overhead: in each round, the variant's CPU time over the bare engine's, minus one; the table gives",
        "the **median over the rounds** and its 90 % bootstrap interval. Not the min: a run's CPU time on this",
        "shared machine has outliers on both sides, and pairing runs a second apart cancels its slower changes.",
        "The **A/A control** is a second bare engine: what noise alone produces. The no-op engine runs hftel's",
        "loop with handles that do nothing: the calls and clock reads any Python telemetry API costs, whatever",
        "it records. A target is met when the whole interval is under it, missed when all of it is over. The",
        "interval covers the rounds of this run only: the machine's state between runs moves the figures too,",
        "so read them beside the A/A row, and compare runs by it.",
        f"Measured {when}; 1-minute load average {load:.2f} at the start, {load_end:.2f} at the end.",
        "",
        "| engine | events/s | CPU per run, ms (median) | CPU per event, us | overhead | 90 % interval "
        "| extra CPU per event, ns | target | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for name, run in runs.items():
        cpu, walls = sorted(run["cpu_seconds"]), sorted(run["wall_seconds"])
        median = (cpu[(len(cpu) - 1) // 2] + cpu[len(cpu) // 2]) / 2
        is_bare, judged = name == "bare", name == "hftel"
        low, high = run["overhead_interval"]
        lines.append("| " + " | ".join([
            run["label"],
            f"{run['events'] / walls[len(walls) // 2]:,.0f}",
            f"{median * 1e3:.1f}",
            f"{median / run['events'] * 1e6:.2f}",
            "—" if is_bare else percent(run["overhead"]),
            "—" if is_bare else f"{percent(low)} to {percent(high)}",
            "—" if is_bare else f"{run['extra_ns_per_event']:+,.0f}",
            f"< {target:g} % (seeds: < {seeds:g} %)" if judged else "—",
            f"{overhead_verdict(run['overhead_interval'], target)} "
            f"(seeds: {overhead_verdict(run['overhead_interval'], seeds)})" if judged else "—",
        ]) + " |")
    if "hftel_over_noop" in info:
        over = info["hftel_over_noop"]
        low, high = over["interval"]
        lines += ["", f"hftel over the no-op engine, round by round (what its recording costs beyond the calls and "
                      f"clock reads): median {percent(over['median'])}, 90 % interval {percent(low)} to {percent(high)}."]
    seconds = exporter["run_seconds"]
    lines += [
        "",
        "The exporter's share: after the rounds (during which it served /metrics without its drain, so that",
        "the drain's work after each hftel run did not land in the next engine's run), the exporter is",
        "restarted with its drain into the embedded ClickHouse (spool on disk, default batching). Once it has",
        f"delivered what the rounds left in the rings, the hftel engine runs for {seconds:.0f} s without a break; the",
        "exporter's CPU time (every thread, chdb's included) from the run's first event until its last audit",
        "row and log event are in ClickHouse, over the run's duration, is its share of one core.",
        "",
        "| events/s | audit rows/s | log events/s | seconds | exporter CPU (s) | % of one core | / engine's CPU "
        "| ClickHouse inserts/s | scrapes | delivered after the run (s) | CPUs |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        "| " + " | ".join([
            f"{exporter['events'] / seconds:,.0f}", f"{exporter['audit_rows'] / seconds:,.0f}",
            f"{exporter['log_events'] / seconds:,.0f}", f"{seconds:.1f}", f"{exporter['exporter_cpu_seconds']:.2f}",
            f"{100 * exporter['share_of_core']:.1f} %", f"{exporter['relative_to_engine']:.1f}x",
            f"{exporter['clickhouse_inserts'] / seconds:,.1f}", str(exporter["scrapes"]),
            f"{exporter['landed_after_seconds']:.1f}", str(info["cpus"]),
        ]) + " |",
    ]
    return lines + [""]


def render(results: dict, sources: list[str] | None = None) -> str:
    benchmarks = [b for b in results["benchmarks"] if "n" in b.get("extra_info", {})]
    python_ops: dict[str, list[dict]] = {}
    c_rows: list[dict] = []
    render_rows: list[dict] = []
    drain_rows: list[dict] = []
    overhead_rows: list[dict] = []
    for benchmark in benchmarks:
        if benchmark["extra_info"]["kind"] == "overhead":
            overhead_rows.append(benchmark)
        elif benchmark["extra_info"]["kind"] == "drain":
            drain_rows.append(benchmark)
        elif benchmark["extra_info"]["kind"] == "render":
            render_rows.append(benchmark)
        elif benchmark["extra_info"]["kind"] == "python":
            python_ops.setdefault(benchmark["extra_info"]["op"], []).append(benchmark)
        else:
            c_rows.append(benchmark)

    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/report.py over bench/results.json): do not edit by hand.",
        "",
        *machine_lines(results),
        *(sources or []),
        "",
        "How to read it:",
        "",
        "- Every round runs one loop of N operations; ns/op is the round's time / N. The headline figure is",
        "  the **min over rounds** (the least disturbed round: the machine may be shared), the median beside",
        "  it shows the spread. Ratios and targets use the min throughout"
        + (", except the engine CPU overhead section, which says why it uses medians." if overhead_rows else "."),
        "- Python rows are gross (loop included) and net (minus the empty loop of the same shape). The",
        "  targets for Python rows are judged on the net figure.",
        "- REFERENCE / this: how many times faster than the section's reference row this row is:",
        "  prometheus_client (single process) for the metrics, structlog's recommended fast JSON set-up",
        "  (filtering bound logger cached on first use, TimeStamper(fmt=\"iso\", utc=True), orjson, bytes to",
        "  /dev/null) through a bound logger for audit rows and log events. \"Like for like\" compares hftel's",
        "  bound logger with structlog's bound logger and the lazy proxy with the lazy proxy.",
        "- The ring rows drain their ring between rounds, outside the timed region: a full ring (a spill",
        "  to a file for audit rows) never happens while timing, and each benchmark checks it did not.",
        "- Reference-machine anchors are prometheus_client and OpenTelemetry measured on a faster machine;",
        "  this run / anchor says how much slower this machine is, to scale the other figures by.",
        "- The histogram rows observe the same latencies, log-uniform from 1 us to 1 s: integer ns for hftel and",
        "  OpenTelemetry, float seconds for prometheus_client. Every library uses its default buckets.",
        "",
    ]
    python_rows = [row for rows in python_ops.values() for row in rows]
    # The metrics sections first, then the rings' (extra_info "section"; metrics when absent).
    ordered = sorted(python_ops.items(), key=lambda item: item[1][0]["extra_info"].get("section") == "rings")
    for op, rows in ordered:
        lines += python_section(op, rows, python_rows)
    metric_rows = [row for row in c_rows if row["extra_info"].get("section") != "rings"]
    ring_rows = [row for row in c_rows if row["extra_info"].get("section") == "rings"]
    if metric_rows:
        lines += c_section(metric_rows)
    if ring_rows:
        lines += c_audit_section(ring_rows, python_rows)
    if render_rows:
        lines += render_section(render_rows)
    if drain_rows:
        lines += drain_section(drain_rows)
    for row in overhead_rows:
        lines += overhead_section(row)
    return "\n".join(lines).rstrip() + "\n"


def merge(paths: list[Path]) -> tuple[dict, list[str]]:
    """The first file's results with every later file's benchmarks in place of those of the same
    name, and a line naming each later file's run."""
    results = json.loads(paths[0].read_text())
    by_name = {benchmark["fullname"]: benchmark for benchmark in results["benchmarks"]}
    notes = []
    for path in paths[1:]:
        later = json.loads(path.read_text())
        files = sorted({benchmark["fullname"].split("::")[0] for benchmark in later["benchmarks"]})
        by_name.update((benchmark["fullname"], benchmark) for benchmark in later["benchmarks"])
        commit = later.get("commit_info", {})
        commit_text = commit.get("id", "?")[:10] + (" (uncommitted changes)" if commit.get("dirty") else "")
        when = later.get("datetime", "")
        try:
            when = datetime.fromisoformat(when).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            pass
        notes.append(f"- Re-run alone and merged in: {', '.join(files)} ({when}, commit {commit_text})")
    results["benchmarks"] = list(by_name.values())
    return results, notes


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(f"usage: {argv[0]} RESULTS.json [MORE_RESULTS.json ...] OUTPUT.md", file=sys.stderr)
        return 2
    results, notes = merge([Path(path) for path in argv[1:-1]])
    output = Path(argv[-1])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results, notes))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
