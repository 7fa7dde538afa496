"""hftel_exporter: the exporter process. It maps engine segments read-only and serves them.

Nothing here is imported by the engine side (`hftel`); the `hftel exporter` command loads it.
"""
