"""The market_data facade: the feed, the broker gateway session (Shioaji) and the event bus."""
from __future__ import annotations

import time
from typing import Any, Callable

from hftel.correlation import Flow
from hftel.instruments._base import Handles, component_logger


class MarketData:
    """Feed events and gaps, gateway connectivity, broker API usage and the event bus.

    >>> feed = MarketData(tel)
    >>> feed.event("tick", latency_ns=180_000)
    >>> feed.connected(session="quote-1")
    >>> feed.bus(occupancy=0.12)
    >>> feed.market_open(True)    # at the session's open; False at its close
    >>> feed.refresh()            # from a housekeeping loop: updates hft_feed_gap_seconds

    Connectivity changes are also written to audit_connectivity and logged; a flow passed with
    them (the order that found the session down) links the row to that intent's trace.
    """

    def __init__(self, telemetry: Any, *, gateway: str = "shioaji", feed: str = "shioaji", log_level: str = "info",
                 clock: Callable[[], int] = time.monotonic_ns):
        self._audit = telemetry.audit
        self._log = component_logger(telemetry, "market_data", log_level).bind(feed=feed)
        handles = Handles(telemetry, "market_data", {})
        self._events = handles["hft_feed_events_total"]
        self._gap = handles["hft_feed_gap_seconds"]
        self._market_open = handles["hft_market_open"]
        self._latency = handles["hft_feed_latency_seconds"]
        self._connected = handles["hft_shioaji_connected"]
        self._reconnects = handles["hft_shioaji_reconnects_total"]
        self._usage = handles["hft_api_usage"]
        self._limit = handles["hft_api_limit"]
        self._occupancy = handles["hft_bus_occupancy_ratio"]
        self._overflow = handles["hft_bus_overflow_total"]
        self.gateway = gateway
        self.is_connected = False
        self._seen_session = False  # the first connect is not a reconnect
        self._clock = clock  # nanoseconds; a simulation passes its own
        self._last_event_ns = clock()
        self._overflowing = False

    # -- the feed (hot path) -----------------------------------------------------------------------

    def event(self, kind: str, latency_ns: int = -1) -> None:
        """One market data event of `kind` (tick or bidask); `latency_ns` from the exchange's stamp."""
        self._events[kind].inc()
        if latency_ns >= 0:
            self._latency.observe(latency_ns)
        self._last_event_ns = self._clock()

    def refresh(self, now_ns: int | None = None) -> float:
        """Sets hft_feed_gap_seconds to the time since the last event; returns it."""
        gap = max(0.0, ((self._clock() if now_ns is None else now_ns) - self._last_event_ns) / 1e9)
        self._gap.set(gap)
        return gap

    def market_open(self, is_open: bool) -> None:
        """Whether the exchange session is open: alerts on feed gaps apply only while it is."""
        self._market_open.set(1 if is_open else 0)

    # -- the gateway session -------------------------------------------------------------------------

    def connected(self, session: str = "", detail: str = "", flow: Flow | None = None) -> None:
        """The session is up (again: counted as a reconnect when it had dropped)."""
        reconnect = not self.is_connected and self._seen_session
        self._set_connected(True)
        if reconnect:
            self._reconnects.inc()
        self._connectivity("CONNECTED", session, detail, flow)
        self._log.info("gateway_connected", gateway=self.gateway, session=session, reconnect=reconnect,
                       **_ids(flow))

    def disconnected(self, detail: str, session: str = "", flow: Flow | None = None) -> None:
        """The session dropped; `detail` says why."""
        self._set_connected(False)
        self._connectivity("DISCONNECTED", session, detail, flow)
        self._log.error("gateway_disconnected", gateway=self.gateway, session=session, detail=detail, **_ids(flow))

    def reconnecting(self, attempt: int, session: str = "", flow: Flow | None = None) -> None:
        self._connectivity("RECONNECTING", session, f"attempt {attempt}", flow)
        self._log.warning("gateway_reconnecting", gateway=self.gateway, session=session, attempt=attempt,
                          **_ids(flow))

    def _set_connected(self, up: bool) -> None:
        self.is_connected = up
        self._seen_session = True
        self._connected.set(1 if up else 0)

    def _connectivity(self, event: str, session: str, detail: str, flow: Flow | None) -> None:
        ids = flow.link_ids() if flow is not None else {}
        self._audit.connectivity(gateway=self.gateway, session=session, event=event, detail=detail, **ids)

    def api_usage(self, api: str, used: int, limit: int) -> None:
        """Broker API usage in the current window (api: subscriptions, orders or queries) and its limit."""
        self._usage[api].set(used)
        self._limit[api].set(limit)

    # -- the event bus -------------------------------------------------------------------------------

    def bus(self, occupancy: float, overflowed: int = 0) -> None:
        """The bus's fill level (0 to 1) and events it dropped since the last call; logs when
        overflow starts and stops rather than per event."""
        self._occupancy.set(occupancy)
        if overflowed:
            self._overflow.inc(overflowed)
        if bool(overflowed) != self._overflowing:
            self._overflowing = bool(overflowed)
            if overflowed:
                self._log.error("bus_overflow", dropped=overflowed, occupancy=round(occupancy, 3))
            else:
                self._log.info("bus_overflow_cleared", occupancy=round(occupancy, 3))


def _ids(flow: Flow | None) -> dict[str, Any]:
    return flow.log_fields() if flow is not None else {}
