"""The local exchange's price book reads every ticker of its price directory, dotted
share classes (BRK.B) included, under the name the price files give it."""

from __future__ import annotations

from pathlib import Path

from alchemiser.exchange.prices import PriceBook

ROWS = "date,close\n2026-07-29,100\n2026-07-30,101\n2026-07-31,102\n"


def test_a_dotted_ticker_keeps_its_whole_name(tmp_path: Path) -> None:
    for name in ("SPY.csv", "BRK.B.csv", "BF.B.csv"):
        (tmp_path / name).write_text(ROWS)
    book = PriceBook(tmp_path)
    assert set(book.symbols) == {"SPY", "BRK.B", "BF.B"}
    assert "BRK.B" in book
    assert "BRK" not in book
