"""Turns pytest-benchmark's JSON into docs/benchmarks.md.

    python bench/report.py bench/results.json docs/benchmarks.md

Every benchmark times rounds of one loop of N operations, N being in its extra_info. The per-operation
figure is the round's time divided by N, taken from the MIN over rounds (the round least disturbed by
other work on the machine; the median is shown beside it for the spread). Python rows also get a net
figure, the gross minus the empty loop of the same shape, and the ratio prometheus_client / row.
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


def python_section(op: str, rows: list[dict]) -> list[str]:
    baseline = next((row for row in rows if row["extra_info"].get("role") == "baseline"), None)
    reference = next((row for row in rows if row["extra_info"].get("role") == "reference"), None)
    loop = per_op_ns(baseline, "min") if baseline else None
    ref_gross = per_op_ns(reference, "min") if reference else None
    ref_net = ref_gross - loop if reference and loop is not None else None
    n = rows[0]["extra_info"]["n"]
    lines = [
        f"### Python: {op}",
        "",
        f"N = {n:,} calls per round. Net = gross minus the empty loop ({ns(loop)} ns per iteration).",
        "",
        "| Implementation | gross ns/op (min) | gross ns/op (median) | net ns/op (min) "
        "| prometheus_client / this, gross | prometheus_client / this, net "
        "| reference-machine anchor ns | this run / anchor | target (net ns) | result |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for row in rows:
        info = row["extra_info"]
        gross = per_op_ns(row, "min")
        is_baseline = info.get("role") == "baseline"
        net = None if is_baseline or loop is None else gross - loop
        anchor = info.get("anchor_ns")
        target = info.get("target_ns")
        lines.append("| " + " | ".join([
            label(row),
            ns(gross),
            ns(per_op_ns(row, "median")),
            "—" if is_baseline else ns(net),
            "—" if is_baseline else ratio(ref_gross, gross),
            "—" if is_baseline else ratio(ref_net, net),
            ns(anchor) if anchor else "—",
            ratio(gross, anchor) if anchor else "—",
            f"<= {target}" if target is not None else "—",
            verdict(net, target),
        ]) + " |")
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


def render(results: dict) -> str:
    benchmarks = [b for b in results["benchmarks"] if "n" in b.get("extra_info", {})]
    python_ops: dict[str, list[dict]] = {}
    c_rows: list[dict] = []
    for benchmark in benchmarks:
        if benchmark["extra_info"]["kind"] == "python":
            python_ops.setdefault(benchmark["extra_info"]["op"], []).append(benchmark)
        else:
            c_rows.append(benchmark)

    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/report.py over bench/results.json): do not edit by hand.",
        "",
        *machine_lines(results),
        "",
        "How to read it:",
        "",
        "- Every round runs one loop of N operations; ns/op is the round's time / N. The headline figure is",
        "  the **min over rounds** (the least disturbed round: the machine may be shared), the median beside",
        "  it shows the spread. Ratios and targets use the min throughout.",
        "- Python rows are gross (loop included) and net (minus the empty loop of the same shape). The",
        "  targets for Python rows are judged on the net figure.",
        "- prometheus_client / this: how many times faster than prometheus_client (single process) this row is.",
        "- Reference-machine anchors are prometheus_client and OpenTelemetry measured on a faster machine;",
        "  this run / anchor says how much slower this machine is, to scale the other figures by.",
        "- The histogram rows observe the same latencies, log-uniform from 1 us to 1 s: integer ns for hftel and",
        "  OpenTelemetry, float seconds for prometheus_client. Every library uses its default buckets.",
        "",
    ]
    for op, rows in python_ops.items():
        lines += python_section(op, rows)
    if c_rows:
        lines += c_section(c_rows)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} RESULTS.json OUTPUT.md", file=sys.stderr)
        return 2
    results = json.loads(Path(argv[1]).read_text())
    output = Path(argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(results))
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
