"""The exporter's own log: one structured line per event on stderr (journald keeps it under systemd).

    >>> log = configure("info", "json")          # doctest: +SKIP
    >>> log.info("segment attached", engine="engine1")  # doctest: +SKIP
    {"engine": "engine1", "event": "segment attached", "level": "info", "timestamp": "..."}
"""
from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure(level: str = "info", format: str = "json", stream: Any = None) -> Any:
    """A structlog logger writing JSON (or, for a terminal, console) lines at `level` and above."""
    renderer = structlog.processors.JSONRenderer() if format == "json" else structlog.dev.ConsoleRenderer(colors=False)
    return structlog.wrap_logger(
        structlog.PrintLogger(stream or sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        cache_logger_on_first_use=True,
    ).bind(logger="hftel.exporter")
