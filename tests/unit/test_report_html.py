"""The backtest's HTML page: well-formed, self-contained, escaped, and small."""

from __future__ import annotations

import math
import random
import re
from dataclasses import replace
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from alchemiser.errors import AlchemiserError
from alchemiser.reporting import svg
from alchemiser.reporting.html import render_backtest_html, write_backtest_html
from alchemiser.reporting.page import Allocations, BacktestPage, MonthlyRow, StatsTable

VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source", "wbr"}
SVG_LEAVES = {"path", "rect", "line", "polygon", "polyline", "circle"}


def _sessions(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _walk(rng: random.Random, start: float, n: int, drift: float, vol: float) -> list[float]:
    values, value = [], start
    for _ in range(n):
        value *= math.exp(rng.gauss(drift, vol))
        values.append(value)
    return values


def _monthly(dates: list[date], values: list[float]) -> list[MonthlyRow]:
    ends: dict[tuple[int, int], float] = {}
    for day, value in zip(dates, values, strict=True):
        ends[(day.year, day.month)] = value
    rows: dict[int, list[float | None]] = {}
    previous = values[0]
    for (year, month), value in ends.items():
        rows.setdefault(year, [None] * 12)[month - 1] = value / previous - 1
        previous = value
    return [
        MonthlyRow(year, months, math.prod(1 + m for m in months if m is not None) - 1)
        for year, months in rows.items()
    ]


def synthetic_page(sessions: int = 3000, strategies: int = 3, symbols: int = 12) -> BacktestPage:
    """A realistic page: an account made of ``strategies`` sleeves, SPY, monthly returns,
    ``symbols`` symbols' allocations, risk counts and notes."""
    rng = random.Random(7)
    dates = _sessions(date(2011, 1, 3), sessions)
    sleeves = {
        f"strategy-{k + 1}": _walk(rng, 100_000 / strategies, sessions, 0.0004, 0.012)
        for k in range(strategies)
    }
    account = [math.fsum(v[i] for v in sleeves.values()) for i in range(sessions)]
    spy = _walk(rng, 100_000, sessions, 0.0003, 0.011)
    names = [f"SYM{k:02d}" for k in range(symbols)]
    weights: dict[str, list[float]] = {s: [] for s in names}
    raw = [rng.random() ** 3 for _ in names]
    for i in range(sessions):
        if i % 21 == 0:  # a monthly rebalance drifts the target mix
            raw = [max(0.0, r + rng.gauss(0, 0.03)) + 1e-3 for r in raw]
        for s, r in zip(names, raw, strict=True):
            weights[s].append(0.97 * r / sum(raw))
    return BacktestPage(
        title="Backtest: example.toml",
        subtitle=[f"{dates[0]} to {dates[-1]}, {sessions:,} sessions", "Fills: next open"],
        stats=StatsTable(
            ["", "Strategy", "SPY"],
            [
                ("CAGR", ["12.3%", "9.8%"]),
                ("Sharpe", ["0.91", "0.74"]),
                ("Max DD", ["-31%", "-34%"]),
            ],
        ),
        dates=dates,
        series={"Account": account, "SPY": spy, **sleeves},
        benchmark="SPY",
        monthly=_monthly(dates, account),
        allocations=Allocations(dates, weights),
        risk_limited={"MAX_POSITION_WEIGHT": 14, "MIN_NOTIONAL": 3},
        notes=["Prices are adjusted closes.", "Costs: 1 bp per trade."],
    )


class _Tree(HTMLParser):
    """Checks every tag is closed in order, and counts what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(text: str) -> _Tree:
    tree = _Tree()
    tree.feed(text)
    tree.close()
    assert tree.errors == []
    assert tree.stack == []
    return tree


@pytest.fixture(scope="module")
def page() -> BacktestPage:
    return synthetic_page()


@pytest.fixture(scope="module")
def rendered(page: BacktestPage) -> str:
    return render_backtest_html(page)


def test_page_is_well_formed_with_one_svg_per_chart(rendered: str) -> None:
    tree = _parse(rendered)
    labels = [a.get("aria-label") for t, a in tree.starts if t == "svg"]
    assert labels == [
        "Equity",
        "Strategies",
        "Drawdown",
        "Monthly returns",
        "Allocations over time",
    ]


def test_statistics_table_has_the_given_rows(rendered: str) -> None:
    table = re.search(r'<table class="stats">.*?</table>', rendered, re.S)
    assert table is not None
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0))
    cells = [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in rows]
    assert cells == [
        ["", "Strategy", "SPY"],
        ["CAGR", "12.3%", "9.8%"],
        ["Sharpe", "0.91", "0.74"],
        ["Max DD", "-31%", "-34%"],
    ]


def test_heat_map_has_twelve_months_and_a_total_per_year(page: BacktestPage, rendered: str) -> None:
    heat = re.search(r'<svg class="chart heatmap".*?</svg>', rendered, re.S)
    assert heat is not None
    tree = _parse(heat.group(0))
    classes = [a.get("class") for t, a in tree.starts if t == "g"]
    assert classes.count("cell month") == 12 * len(page.monthly)
    assert classes.count("cell year") == len(page.monthly)
    first = page.monthly[0]
    assert first.months[0] is not None
    assert svg.percent(first.months[0]) in heat.group(0)
    assert "-0.0%" not in heat.group(0)


def test_no_network_reference_and_no_script(rendered: str) -> None:
    lowered = rendered.lower()
    assert "http://" not in lowered
    assert "https://" not in lowered
    assert "<script" not in lowered
    assert re.search(r"(src|href)\s*=", lowered) is None
    assert "url(" not in lowered
    assert "@import" not in lowered


def test_user_text_is_escaped_everywhere(page: BacktestPage) -> None:
    evil = '<script>alert("x")</script>'
    weights = dict(page.allocations.weights) if page.allocations else {}
    weights[evil] = [1.0] * len(page.dates)
    hostile = replace(
        page,
        title=evil,
        subtitle=[evil],
        stats=StatsTable(["", evil], [(evil, [evil])]),
        series={**page.series, evil: page.series["SPY"]},
        risk_limited={evil: 1},
        notes=[evil],
        allocations=Allocations(page.dates, weights),
    )
    text = render_backtest_html(hostile)
    _parse(text)
    assert "<script" not in text
    assert text.count("&lt;script&gt;") >= 8


def test_fifteen_year_page_stays_small_and_lines_are_downsampled() -> None:
    page = synthetic_page(sessions=15 * 252, strategies=5, symbols=40)
    text = render_backtest_html(page)
    assert len(text.encode()) < 1_500_000
    for d in re.findall(r'<path d="([^"]*)"', text):
        assert d.count("L") <= svg.MAX_LINE_POINTS + 2


def test_downsample_keeps_the_trough_and_the_ends() -> None:
    values = [1.0] * 10_000
    values[4321] = -5.0
    keep = svg.downsample(values, 100)
    assert keep[0] == 0
    assert keep[-1] == 9_999
    assert 4321 in keep
    assert len(keep) <= 102
    assert keep == sorted(set(keep))


@pytest.mark.parametrize(
    ("lo", "hi"), [(100_000, 2_500_000), (98_000, 104_000), (5, 3e9), (1e6, 1.001e6)]
)
def test_log_ticks_are_in_range_and_few(lo: float, hi: float) -> None:
    ticks = svg.log_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12
    assert all(lo <= t <= hi for t in ticks)
    assert ticks == sorted(set(ticks))


def test_money_labels() -> None:
    assert svg.money(1_250_000) == "$1.25M"
    assert svg.money(250_000) == "$250k"
    assert svg.money(950) == "$950"


def test_date_ticks_pick_years_months_or_days() -> None:
    years = svg.date_ticks(date(2010, 3, 1), date(2025, 6, 30))
    assert [label for _, label in years][:2] == ["2012", "2014"]
    assert len(years) <= 10
    months = svg.date_ticks(date(2024, 1, 15), date(2024, 9, 30))
    assert months[0] == (date(2024, 2, 1), "Feb 2024")
    days = svg.date_ticks(date(2024, 3, 1), date(2024, 3, 20))
    assert days[0][1] == "Mar 1"
    assert len(days) <= 11


def test_heat_colours_diverge() -> None:
    assert svg.heat_colour(0.0, 0.1) == ("#f7f7f7", False)
    assert svg.heat_colour(0.2, 0.1) == ("#1a9850", True)
    assert svg.heat_colour(-0.2, 0.1) == ("#d73027", True)
    assert svg.percent(-0.00001) == "0.0%"
    assert svg.percent(-0.0123) == "-1.2%"


def test_page_without_benchmark_strategies_or_allocations(page: BacktestPage) -> None:
    bare = BacktestPage(
        title="t",
        subtitle=[],
        stats=StatsTable(["", "Strategy"], []),
        dates=page.dates[:1],
        series={"Account": [100.0]},
    )
    tree = _parse(render_backtest_html(bare))
    assert [a.get("aria-label") for t, a in tree.starts if t == "svg"] == ["Equity", "Drawdown"]


@pytest.mark.parametrize(
    "change",
    [
        {"series": {"Account": [1.0]}},
        {"benchmark": "QQQ"},
        {"monthly": [MonthlyRow(2020, [0.1] * 11, 0.0)]},
        {"stats": StatsTable(["", "a", "b"], [("x", ["1"])])},
        {"series": {"Account": [math.nan] * 3000}},
        {"dates": []},
    ],
)
def test_malformed_page_is_refused_with_a_typed_error(
    page: BacktestPage, change: dict[str, object]
) -> None:
    with pytest.raises(AlchemiserError) as caught:
        render_backtest_html(replace(page, **change))  # type: ignore[arg-type]
    assert caught.value.code == "REPORT_INVALID"


def test_write_is_atomic_and_reports_a_bad_path(page: BacktestPage, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")
    write_backtest_html(page, target)
    assert target.read_text(encoding="utf-8") == render_backtest_html(page)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    with pytest.raises(AlchemiserError) as caught:
        write_backtest_html(page, tmp_path / "missing" / "report.html")
    assert caught.value.code == "REPORT_WRITE_FAILED"
