"""The execution facade: fills, PnL, drawdown, positions, exposure and reconciliation."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from hftel.instruments._base import Handles, Intent, component_logger


class Execution:
    """Fills by side; PnL and drawdown by strategy; positions by symbol; exposure and leverage.

    >>> execution = Execution(tel, strategies=("mm",), symbols=("2330",), drawdown_limits={"mm": 50_000})
    >>> execution.filled(intent, quantity=2, price=612.0, latency_ns=3_100_000)
    >>> execution.pnl("mm", realized=1_200.0, unrealized=-300.0)
    >>> execution.exposure(long=1_224_000.0, short=0.0, equity=5_000_000.0)

    pnl() keeps each strategy's peak and sets the drawdown from it; filled() writes the fill to
    audit_orders and logs it with the intent's ids and the broker's order id.
    """

    def __init__(self, telemetry: Any, *, strategies: Iterable[str], symbols: Iterable[str],
                 drawdown_limits: Mapping[str, float] | None = None, log_level: str = "info"):
        self.strategies = tuple(strategies)
        self._audit = telemetry.audit
        self._log = component_logger(telemetry, "execution", log_level)
        handles = Handles(telemetry, "execution", {"strategy": self.strategies, "symbol": tuple(symbols)})
        self._fills = handles["hft_fills_total"]
        self._realized = handles["hft_pnl_realized"]
        self._unrealized = handles["hft_pnl_unrealized"]
        self._drawdown = handles["hft_drawdown"]
        self._drawdown_limit = handles["hft_drawdown_limit"]
        self._exposure = handles["hft_exposure"]
        self._leverage = handles["hft_leverage_ratio"]
        self._position = handles["hft_position"]
        self._reconciliation = handles["hft_reconciliation_delay_seconds"]
        self._peaks = {strategy: 0.0 for strategy in self.strategies}
        for strategy, limit in (drawdown_limits or {}).items():
            self.drawdown_limit(strategy, limit)

    def filled(self, intent: Intent, *, quantity: int, price: float, latency_ns: int = 0) -> None:
        """A fill of `quantity` at `price`; FILLED once the intent's quantity is done, else PARTIAL_FILL."""
        self._fills["buy" if intent.side == "BUY" else "sell"].inc()
        status = "FILLED" if quantity >= intent.quantity else "PARTIAL_FILL"
        self._audit.order(status=status, latency_ns=latency_ns, **{**intent.row, "quantity": quantity, "price": price})
        self._log.info("fill", side=intent.side, quantity=quantity, price=price, status=status,
                       broker_order_id=intent.broker_order_id, **intent.log_ids)

    def pnl(self, strategy: str, *, realized: float, unrealized: float) -> float:
        """Sets the strategy's PnL and its drawdown from the session peak; returns the drawdown."""
        total = realized + unrealized
        peak = self._peaks[strategy] = max(self._peaks[strategy], total)
        drawdown = peak - total
        self._realized[strategy].set(realized)
        self._unrealized[strategy].set(unrealized)
        self._drawdown[strategy].set(drawdown)
        return drawdown

    def drawdown_limit(self, strategy: str, limit: float) -> None:
        """The drawdown at which StormGuard halts `strategy` (from the engine's configuration)."""
        self._drawdown_limit[strategy].set(limit)

    def reset_peak(self, strategy: str, total: float) -> None:
        """Starts a new drawdown window at PnL `total` (after an operator resumes a halted strategy)."""
        self._peaks[strategy] = total
        self._drawdown[strategy].set(0.0)

    def position(self, symbol: str, lots: int) -> None:
        self._position[symbol].set(lots)

    def exposure(self, *, long: float, short: float, equity: float) -> None:
        """Long and short notional (both >= 0); gross is their sum and leverage gross / equity."""
        gross = long + short
        self._exposure["gross"].set(gross)
        self._exposure["long"].set(long)
        self._exposure["short"].set(short)
        self._leverage.set(gross / equity if equity > 0 else 0.0)

    def reconciliation_delay(self, seconds: float) -> None:
        """Seconds since positions last matched the broker's."""
        self._reconciliation.set(seconds)
