"""Alpaca JSON onto the product's types: ``order_record`` and the spendable cash rule.

The orders follow the shape of Alpaca's Order schema (numbers are strings, absent
values are null) as returned with ``raw_data=True``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from alchemiser.adapters.alpaca.broker import _STATUS, AlpacaBroker, order_record
from alchemiser.domain.orders import OrderStatus, Side


def alpaca_order(**overrides: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": "61e69015-8549-4bfd-b9c3-01e75843f47d",
        "client_order_id": "alch-20260731-SPY-buy",
        "created_at": "2026-07-31T19:45:01.942282Z",
        "updated_at": "2026-07-31T19:45:01.950000Z",
        "submitted_at": "2026-07-31T19:45:01.937734Z",
        "filled_at": None,
        "expired_at": None,
        "canceled_at": None,
        "failed_at": None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
        "asset_id": "b0b6dd9d-8b9b-48a9-ba46-b9d54906e415",
        "symbol": "SPY",
        "asset_class": "us_equity",
        "notional": None,
        "qty": "10",
        "filled_qty": "0",
        "filled_avg_price": None,
        "order_class": "",
        "order_type": "market",
        "type": "market",
        "side": "buy",
        "position_intent": "buy_to_open",
        "time_in_force": "day",
        "limit_price": None,
        "stop_price": None,
        "status": "accepted",
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "subtag": None,
        "source": None,
        "expires_at": "2026-07-31T20:00:00Z",
    }
    order.update(overrides)
    return order


MAPPED = {
    "pending_new": OrderStatus.PENDING_NEW,
    "accepted": OrderStatus.ACCEPTED,
    "new": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.DONE_FOR_DAY,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "replaced": OrderStatus.CANCELED,
    "pending_cancel": OrderStatus.PENDING_CANCEL,
    "rejected": OrderStatus.REJECTED,
    "pending_review": OrderStatus.PENDING_NEW,
    "held": OrderStatus.PENDING_NEW,
}


class TestStatus:
    def test_table_is_pinned(self) -> None:
        assert dict(_STATUS) == MAPPED

    @pytest.mark.parametrize(("alpaca", "ours"), list(MAPPED.items()))
    def test_every_mapped_status(self, alpaca: str, ours: OrderStatus) -> None:
        record = order_record(alpaca_order(status=alpaca))
        assert record.status is ours
        assert record.reject_reason == (
            "rejected by the broker" if ours is OrderStatus.REJECTED else None
        )

    @pytest.mark.parametrize(
        "alpaca",
        [
            "calculated",
            "stopped",
            "suspended",
            "pending_replace",
            "accepted_for_bidding",
            "brand_new_state",
            "",
            "FILLED",
        ],
    )
    def test_unknown_status_is_still_working(self, alpaca: str) -> None:
        record = order_record(alpaca_order(status=alpaca))
        assert record.status is OrderStatus.ACCEPTED
        assert not record.status.terminal
        assert record.unfilled
        assert record.reject_reason is None

    def test_terminal_states(self) -> None:
        terminal = {a for a in MAPPED if order_record(alpaca_order(status=a)).status.terminal}
        assert terminal == {"filled", "done_for_day", "canceled", "expired", "replaced", "rejected"}


class TestFields:
    def test_new_qty_order(self) -> None:
        record = order_record(alpaca_order())
        assert record.client_order_id == "alch-20260731-SPY-buy"
        assert record.broker_order_id == "61e69015-8549-4bfd-b9c3-01e75843f47d"
        assert record.symbol == "SPY"
        assert record.side is Side.BUY
        assert record.qty == Decimal("10")
        assert record.filled_qty == Decimal(0)
        assert record.filled_avg_price is None
        assert record.notional is None
        assert record.submitted_at == datetime(2026, 7, 31, 19, 45, 1, 937734, tzinfo=UTC)

    def test_partially_filled_sell(self) -> None:
        record = order_record(
            alpaca_order(
                side="sell",
                qty="12.5",
                filled_qty="4.25",
                filled_avg_price="187.1234",
                status="partially_filled",
            )
        )
        assert record.side is Side.SELL
        assert record.qty == Decimal("12.5")
        assert record.filled_qty == Decimal("4.25")
        assert record.filled_avg_price == Decimal("187.1234")
        assert record.unfilled

    def test_filled(self) -> None:
        record = order_record(
            alpaca_order(status="filled", filled_qty="10", filled_avg_price="512.07")
        )
        assert record.status is OrderStatus.FILLED
        assert not record.unfilled
        assert record.filled_avg_price == Decimal("512.07")

    def test_notional_order_without_qty_uses_filled_qty(self) -> None:
        record = order_record(
            alpaca_order(
                qty=None,
                notional="1500.5",
                filled_qty="2.930417",
                filled_avg_price="512.05",
                status="filled",
            )
        )
        assert record.notional == Decimal("1500.5")
        assert record.qty == Decimal("2.930417")
        assert record.filled_qty == Decimal("2.930417")

    def test_unfilled_notional_order_has_zero_qty(self) -> None:
        record = order_record(alpaca_order(qty=None, notional="250", filled_qty="0"))
        assert record.qty == Decimal(0)
        assert record.notional == Decimal(250)
        assert record.filled_avg_price is None

    def test_missing_and_empty_numbers(self) -> None:
        raw = alpaca_order(qty="", notional="", filled_avg_price="")
        del raw["filled_qty"]
        record = order_record(raw)
        assert record.qty == Decimal(0)
        assert record.filled_qty == Decimal(0)
        assert record.notional is None
        assert record.filled_avg_price is None

    @pytest.mark.parametrize(
        ("raw", "ours"), [("BRK/B", "BRK.B"), ("brk.b", "BRK.B"), (" spy ", "SPY")]
    )
    def test_symbol_is_normalised(self, raw: str, ours: str) -> None:
        assert order_record(alpaca_order(symbol=raw)).symbol == ours

    def test_submitted_at_falls_back_to_created_at(self) -> None:
        record = order_record(alpaca_order(submitted_at=None))
        assert record.submitted_at == datetime(2026, 7, 31, 19, 45, 1, 942282, tzinfo=UTC)

    def test_no_timestamps(self) -> None:
        assert order_record(alpaca_order(submitted_at=None, created_at=None)).submitted_at is None

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "2026-07-31T19:45:01.937734123Z",
                datetime(2026, 7, 31, 19, 45, 1, 937734, tzinfo=UTC),
            ),
            ("2026-07-31T19:45:01Z", datetime(2026, 7, 31, 19, 45, 1, tzinfo=UTC)),
            ("2026-07-31T15:45:01-04:00", datetime(2026, 7, 31, 19, 45, 1, tzinfo=UTC)),
            ("2026-07-31T19:45:01", datetime(2026, 7, 31, 19, 45, 1, tzinfo=UTC)),
        ],
    )
    def test_timestamp_shapes(self, text: str, expected: datetime) -> None:
        submitted = order_record(alpaca_order(submitted_at=text)).submitted_at
        assert submitted == expected
        assert submitted is not None
        assert submitted.tzinfo is not None

    def test_numbers_given_as_json_numbers(self) -> None:
        record = order_record(alpaca_order(qty=3, filled_qty=1.5, filled_avg_price=100))
        assert record.qty == Decimal(3)
        assert record.filled_qty == Decimal("1.5")
        assert record.filled_avg_price == Decimal(100)


class TestMalformed:
    @pytest.mark.parametrize("field", ["qty", "filled_qty", "filled_avg_price", "notional"])
    @pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", "-Infinity", "sNaN", "1,5"])
    def test_bad_numbers_raise_value_error(self, field: str, value: str) -> None:
        with pytest.raises(ValueError, match=field):
            order_record(alpaca_order(**{field: value}))

    @pytest.mark.parametrize("key", ["status", "client_order_id", "symbol", "side", "id"])
    def test_missing_required_key(self, key: str) -> None:
        raw = alpaca_order()
        del raw[key]
        with pytest.raises(KeyError):
            order_record(raw)

    def test_unknown_side(self) -> None:
        with pytest.raises(ValueError, match="short"):
            order_record(alpaca_order(side="short"))

    def test_bad_symbol(self) -> None:
        with pytest.raises(ValueError, match="ticker"):
            order_record(alpaca_order(symbol="NOT A SYMBOL!"))

    def test_bad_timestamp(self) -> None:
        with pytest.raises(ValueError, match="isoformat"):
            order_record(alpaca_order(submitted_at="yesterday"))


def account(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "00000000-0000-4000-8000-000000000001",
        "account_number": "PA-FAKE-TEST",
        "status": "ACTIVE",
        "currency": "USD",
        "multiplier": "1",
        "trading_blocked": False,
        "account_blocked": False,
        "equity": "100000",
        "last_equity": "100000",
    }
    base.update(fields)
    return base


class TestSpendable:
    def test_cash_account(self) -> None:
        raw = account(
            cash="25000.50", buying_power="25000.50", non_marginable_buying_power="25000.50"
        )
        assert AlpacaBroker._spendable(raw) == Decimal("25000.50")

    def test_margin_account_with_4x_buying_power_spends_only_cash(self) -> None:
        raw = account(
            multiplier="4",
            cash="10000",
            buying_power="40000",
            regt_buying_power="20000",
            daytrading_buying_power="40000",
            non_marginable_buying_power="10000",
        )
        assert AlpacaBroker._spendable(raw) == Decimal(10000)

    def test_margin_account_without_non_marginable_field(self) -> None:
        assert AlpacaBroker._spendable(account(cash="10000", buying_power="40000")) == Decimal(
            10000
        )

    @pytest.mark.parametrize(
        ("cash", "buying_power", "non_marginable", "expected"),
        [
            ("10000", "4000", "8000", "4000"),  # open orders hold buying power
            ("10000", "40000", "6000", "6000"),  # unsettled / held back
            ("10000", "", None, "10000"),
            ("10000", None, "", "10000"),
            ("0", "0", "0", "0"),
        ],
    )
    def test_least_of_the_three(
        self, cash: str, buying_power: str | None, non_marginable: str | None, expected: str
    ) -> None:
        raw = account(
            cash=cash, buying_power=buying_power, non_marginable_buying_power=non_marginable
        )
        assert AlpacaBroker._spendable(raw) == Decimal(expected)

    def test_negative_cash_is_negative(self) -> None:
        raw = account(cash="-1250.75", buying_power="38000", non_marginable_buying_power="0")
        assert AlpacaBroker._spendable(raw) == Decimal("-1250.75")

    @pytest.mark.parametrize("cash", [None, ""])
    def test_missing_cash_is_malformed_not_zero(self, cash: str | None) -> None:
        # Zero would shrink the account's equity, and the plan would sell what it holds.
        raw = account(buying_power="5000")
        raw["cash"] = cash
        with pytest.raises(ValueError, match="cash is missing"):
            AlpacaBroker._spendable(raw)

    @pytest.mark.parametrize("field", ["cash", "buying_power", "non_marginable_buying_power"])
    @pytest.mark.parametrize("value", ["abc", "NaN", "Infinity"])
    def test_bad_numbers_raise_value_error(self, field: str, value: str) -> None:
        raw = account(cash="1000", buying_power="1000", non_marginable_buying_power="1000")
        raw[field] = value
        with pytest.raises(ValueError, match=field):
            AlpacaBroker._spendable(raw)
