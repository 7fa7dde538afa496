"""`python -m hftel exporter ARGUMENTS` for a benchmark: on loopback, any free port, its stderr kept.

    >>> exporter = ExporterProcess("--config", "exporter.toml")   # doctest: +SKIP
    >>> exporter.url, exporter.cpu_seconds()                      # doctest: +SKIP
    >>> exporter.stop()                                           # doctest: +SKIP
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading


class ExporterProcess:
    """The exporter, started and waited for ("exporter started" on its JSON log); `url` is its /metrics."""

    def __init__(self, *arguments: str):
        self.process = subprocess.Popen([sys.executable, "-m", "hftel", "exporter", *arguments],
                                        stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:
            found = re.search(r'"address": "127\.0\.0\.1:(\d+)"', line)
            if "exporter started" in line and found:
                self.url = f"http://127.0.0.1:{found.group(1)}/metrics"
                break
        else:
            raise RuntimeError(f"the exporter did not start (exit {self.process.wait()})")
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True).start()

    def cpu_seconds(self) -> float:
        """The process's CPU time so far, user + system, every thread (chdb's included)."""
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
