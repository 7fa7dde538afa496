"""What a scrape says: formats, family headers, sample prefixes, and the render plan built from them.

Prometheus text 0.0.4 and OpenMetrics 1.0 differ only in a family's header lines, in HELP escaping
and in the closing `# EOF`; sample lines are the same. Everything here runs once per series, when it
is discovered. The values are filled in by the compiled renderer (`_exposition.RenderPlan`).

    >>> fmt = negotiate("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    >>> fmt.name
    'openmetrics'
    >>> family_header("orders", "counter", "Orders sent.", TEXT)
    '# HELP orders_total Orders sent.\\n# TYPE orders_total counter\\n'
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from hftel import _core
from hftel.metrics import parse_labels, render_labels
from hftel_exporter._exposition import LITERAL, SECONDS, RenderPlan, format_double

KIND_NAMES = {
    _core.COUNTER: "counter",
    _core.GAUGE_INT: "gauge",
    _core.GAUGE_FLOAT: "gauge",
    _core.HISTOGRAM: "histogram",
}


class Format(NamedTuple):
    """An exposition format and the Content-Type it is served with."""

    name: str
    content_type: str
    openmetrics: bool


TEXT = Format("text", "text/plain; version=0.0.4; charset=utf-8", False)
OPENMETRICS = Format("openmetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8", True)


def negotiate(accept: str | None) -> Format:
    """OpenMetrics 1.0 when the Accept header asks for it at least as much as for text, else text."""
    best = {TEXT: 0.0, OPENMETRICS: -1.0}
    for part in (accept or "").split(","):
        media, *parameters = [piece.strip() for piece in part.split(";")]
        values = dict(p.split("=", 1) for p in parameters if "=" in p)
        try:
            quality = float(values.get("q", "1"))
        except ValueError:
            continue
        if media.lower() == "application/openmetrics-text" and values.get("version", "1.0.0") == "1.0.0":
            best[OPENMETRICS] = max(best[OPENMETRICS], quality)
        elif media.lower() in ("text/plain", "*/*", "text/*"):
            best[TEXT] = max(best[TEXT], quality)
    return OPENMETRICS if best[OPENMETRICS] > 0 and best[OPENMETRICS] >= best[TEXT] else TEXT


def escape_help(text: str, fmt: Format) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if fmt.openmetrics else escaped


def family_header(name: str, kind: str, help: str, fmt: Format) -> str:
    """The HELP and TYPE lines of a family. In text 0.0.4 a counter's family is named with `_total`."""
    family = f"{name}_total" if kind == "counter" and not fmt.openmetrics else name
    help_line = f"# HELP {family} {escape_help(help, fmt)}\n" if help else ""
    return f"{help_line}# TYPE {family} {kind}\n"


def sample_names(name: str, kind: str) -> tuple[str, ...]:
    """The sample names a family writes, for telling two families' lines apart."""
    if kind == "counter":
        return (f"{name}_total",)
    if kind == "histogram":
        return (f"{name}_bucket", f"{name}_count", f"{name}_sum")
    return (name,)


def prefix(sample: str, labels: str) -> bytes:
    """The text in front of a value: `name{labels} `."""
    return (f"{sample}{{{labels}}} " if labels else f"{sample} ").encode()


def join_labels(*rendered: str) -> str:
    return ",".join(part for part in rendered if part)


def in_seconds(name: str, kind: str) -> bool:
    """Histograms record integer nanoseconds; one named `*_seconds` is exposed in seconds."""
    return kind == "histogram" and name.endswith("_seconds")


def bucket_bound(bound: int | str, seconds: bool) -> str:
    """An `le` value: the bound as recorded, or nanoseconds written as seconds."""
    return format_double(bound / 1e9) if seconds and isinstance(bound, int) else str(bound)


def series_prefixes(name: str, kind: str, labels: str, bounds: Sequence[int | str] = ()) -> list[bytes]:
    """One prefix per sample line of a series; `labels` is already rendered and escaped."""
    if kind == "counter":
        return [prefix(f"{name}_total", labels)]
    if kind == "gauge":
        return [prefix(name, labels)]
    seconds = in_seconds(name, kind)
    buckets = [bucket_bound(bound, seconds) for bound in bounds] + ["+Inf"]
    return [prefix(f"{name}_bucket", join_labels(labels, f'le="{le}"')) for le in buckets] + [
        prefix(f"{name}_count", labels), prefix(f"{name}_sum", labels)]


def with_engine_label(labels: str, engine_label: str, engine: str) -> str:
    """Prepends the engine's label. A series that has a label of that name already keeps it as
    `exported_<name>`, as Prometheus does for a target label that clashes."""
    if not engine_label:
        return labels
    own = render_labels((engine_label,), (engine,))
    if f"{engine_label}=" in labels:
        parsed = parse_labels(labels)
        if engine_label in parsed:
            parsed[f"exported_{engine_label}"] = parsed.pop(engine_label)
            labels = render_labels(tuple(parsed), tuple(parsed.values()))
    return join_labels(own, labels)


@dataclass(frozen=True)
class SeriesSource:
    """One published series of an attached segment, as the renderer needs it."""

    engine: str
    segment: _core.Segment
    index: int
    type: int
    name: str
    labels: str
    help: str
    value_offset: int
    bounds: tuple[int, ...] = ()

    @property
    def kind(self) -> str:
        return KIND_NAMES[self.type]


@dataclass(frozen=True)
class Conflict:
    """A series left out of the exposition, and why."""

    source: SeriesSource
    reason: str


def build_plan(sources: Iterable[SeriesSource], fmt: Format, engine_label: str = "engine",
               reserved: Mapping[str, str] | None = None) -> tuple[RenderPlan, list[Conflict]]:
    """Groups series into families (a family's lines must be contiguous), sorted by name.

    A series whose family already exists with another type, or whose sample names another family
    (or one of the exporter's own, in `reserved`: sample name -> owner) already writes, is left out
    and returned as a Conflict.
    """
    families: dict[str, list[SeriesSource]] = {}
    owners: dict[str, str] = dict(reserved or {})
    conflicts: list[Conflict] = []
    for source in sorted(sources, key=lambda s: (s.engine, s.index)):
        family = families.get(source.name)
        if family is not None and family[0].kind != source.kind:
            conflicts.append(Conflict(source, f"{source.name} is a {family[0].kind} elsewhere, here a {source.kind}"))
            continue
        if family is None:
            clash = [owners[n] for n in sample_names(source.name, source.kind) if n in owners]
            if clash:
                conflicts.append(Conflict(source, f"{source.name} writes samples that {clash[0]} writes"))
                continue
            for sample in sample_names(source.name, source.kind):
                owners[sample] = source.name
            family = families[source.name] = []
        family.append(source)
    operations: list[tuple] = []
    for name in sorted(families):
        members = families[name]
        first = members[0]
        operations.append((LITERAL, family_header(name, first.kind, first.help, fmt).encode()))
        for source in members:
            labels = with_engine_label(source.labels, engine_label, source.engine)
            operations.append((source.type, source.segment, source.value_offset,
                               series_prefixes(name, source.kind, labels, source.bounds),
                               SECONDS if in_seconds(name, source.kind) else 0))
    return RenderPlan(operations), conflicts
