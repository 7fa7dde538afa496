"""The failure scenarios the demo engine can inject, from the seeds' failure drills.

A scenario is switched on and off while the engine runs, through a shared array of flags (one
byte per scenario) that the runner writes and the engine reads every housekeeping pass.
"""
from __future__ import annotations

from typing import Any, Sequence

#: name -> what the engine does while it is on, and what should move.
SCENARIOS: dict[str, str] = {
    "feed-gap": "the feed goes silent: hft_feed_gap_seconds grows, the feed health check fails",
    "bus-overflow": "strategies fall behind the bus: hft_bus_occupancy_ratio near 1, hft_bus_overflow_total rises",
    "stormguard-halt": "strategy mm bleeds 4 % of its drawdown limit every 100 ms: hft_drawdown rises and "
                       "StormGuard walks it to HALT (hft_stormguard_mode 3); clearing is the operator's resume",
    "reject-spike": "the broker rejects a third of orders: hft_order_rejects_total rises, StormGuard goes WARM/STORM",
    "recorder-failure": "the tick recorder's file becomes unwritable: hft_recorder_write_failures_total rises, "
                        "its queue grows",
    "shioaji-disconnect": "the Shioaji session drops after an order's ack: hft_shioaji_connected 0, the feed stops, "
                          "StormGuard goes STORM; on clearing it reconnects and delivers the stranded fill",
}
NAMES = tuple(SCENARIOS)


def check_names(names: Sequence[str]) -> tuple[str, ...]:
    """`names` if every one is a scenario, else ValueError naming the unknown ones and the known."""
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return tuple(names)


class Faults:
    """The switches, shared between the runner and the engine process.

    >>> faults = Faults.local()
    >>> faults.inject("feed-gap"); faults.active("feed-gap")
    True
    """

    def __init__(self, flags: Any):
        self._flags = flags  # a multiprocessing Array('b') or a bytearray

    @classmethod
    def local(cls) -> "Faults":
        return cls(bytearray(len(NAMES)))

    @classmethod
    def shared(cls, context: Any) -> "Faults":
        return cls(context.Array("b", len(NAMES), lock=False))

    def inject(self, name: str) -> None:
        self._flags[NAMES.index(name)] = 1

    def clear(self, name: str) -> None:
        self._flags[NAMES.index(name)] = 0

    def active(self, name: str) -> bool:
        return bool(self._flags[NAMES.index(name)])

    def snapshot(self) -> frozenset[str]:
        return frozenset(name for index, name in enumerate(NAMES) if self._flags[index])

    @property
    def flags(self) -> Any:
        return self._flags
