"""The spellings real Composer exports contain, and the clear refusals of what the product
does not trade or Composer could not export. Parsing only: the tree, and errors with their
file:line:column."""

from __future__ import annotations

import pytest

from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import (
    Asset,
    Comparator,
    Filter,
    If,
    Indicator,
    IndicatorFn,
    Location,
    Node,
)
from alchemiser.strategy.symphony.parser import check_symphony, parse_symphony, symbols


def at(line: int, column: int) -> Location:
    return Location("s.clj", line, column)


def wrap(body: str, options: str = "{}") -> str:
    """``body`` as the node of a symphony, on line 2 from column 1."""
    return f'(defsymphony "S" {options}\n{body})'


def body(text: str) -> Node:
    return parse_symphony(wrap(text), "s.clj").body


def condition_left(text: str) -> Indicator:
    node = body(f"(if (> {text} 1) [nil])")
    assert isinstance(node, If)
    assert isinstance(node.condition.left, Indicator)
    return node.condition.left


def problem(text: str) -> StrategyError:
    with pytest.raises(StrategyError) as caught:
        parse_symphony(text, "s.clj")
    return caught.value


# ---- the percentage price oscillators ----


def test_ppo_with_its_options() -> None:
    ppo = condition_left('(percentage-price-oscillator "SPY" {:short-window 5 :long-window 20})')
    params = (("long-window", 20), ("short-window", 5))
    assert ppo == Indicator(IndicatorFn.PPO, "SPY", 20, at(2, 8), params)
    assert ppo.param("short-window") == 5


def test_ppo_options_default_to_12_and_26() -> None:
    bare = condition_left('(percentage-price-oscillator "SPY")')
    empty = condition_left('(percentage-price-oscillator "SPY" {})')
    half = condition_left('(percentage-price-oscillator "SPY" {:long-window 26})')
    params = (("long-window", 26), ("short-window", 12))
    assert bare == empty == half == Indicator(IndicatorFn.PPO, "SPY", 26, at(2, 8), params)


def test_ppo_signal_needs_long_plus_smooth_sessions_of_history() -> None:
    text = (
        '(percentage-price-oscillator-signal "QQQ" '
        "{:short-window 12 :long-window 26 :smooth-window 9})"
    )
    signal = condition_left(text)
    params = (("long-window", 26), ("short-window", 12), ("smooth-window", 9))
    assert signal == Indicator(IndicatorFn.PPO_SIGNAL, "QQQ", 35, at(2, 8), params)
    assert condition_left('(percentage-price-oscillator-signal "QQQ")') == signal


def test_ppo_scores_a_filter_without_a_ticker() -> None:
    node = body(
        "(filter (percentage-price-oscillator {:short-window 3 :long-window 8}) (select-top 1)"
        ' [(asset "A") (asset "B")])'
    )
    assert isinstance(node, Filter)
    params = (("long-window", 8), ("short-window", 3))
    assert node.score == Indicator(IndicatorFn.PPO, None, 8, at(2, 9), params)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            '(percentage-price-oscillator "SPY" {:short-windw 5})',
            "2:44",
            "unexpected percentage-price-oscillator option :short-windw (did you mean "
            "`:short-window`?): expected :short-window, :long-window",
        ),
        (
            '(percentage-price-oscillator "SPY" {:window 5})',
            "2:44",
            "unexpected percentage-price-oscillator option :window",
        ),
        (
            '(percentage-price-oscillator "SPY" {:smooth-window 5})',
            "2:44",
            "expected :short-window, :long-window",
        ),
        (
            '(percentage-price-oscillator-signal "SPY" {:smooth 5})',
            "2:51",
            "(did you mean `:smooth-window`?): expected :short-window, :long-window, "
            ":smooth-window",
        ),
        (
            '(percentage-price-oscillator "SPY" {:short-window 0})',
            "2:58",
            "percentage-price-oscillator :short-window must be a positive whole number, got 0",
        ),
        (
            '(percentage-price-oscillator-signal "SPY" {:smooth-window 2.5})',
            "2:66",
            ":smooth-window must be a positive whole number, got 2.5",
        ),
        (
            '(percentage-price-oscillator "SPY" {:short-window 26 :long-window 12})',
            "2:43",
            ":short-window (26) must be shorter than :long-window (12)",
        ),
        (
            '(percentage-price-oscillator "SPY" {:long-window 12})',
            "2:43",
            ":short-window (12) must be shorter than :long-window (12)",
        ),
        (
            '(percentage-price-oscillator "SPY" 12)',
            "2:8",
            "takes one options map {:short-window 12 :long-window 26} after its ticker",
        ),
        ("(percentage-price-oscillator {})", "2:8", "percentage-price-oscillator needs a ticker"),
    ],
)
def test_ppo_errors(text: str, where: str, message: str) -> None:
    caught = problem(wrap(f"(if (> {text} 1) [nil])"))
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


# ---- aliases, positional windows, = ----


@pytest.mark.parametrize(
    ("alias", "fn"),
    [
        ("standard-deviation-return", IndicatorFn.STDEV_RETURN),
        ("standard-deviation-price", IndicatorFn.STDEV_PRICE),
        ("relative-strength-index", IndicatorFn.RSI),
        ("rsi", IndicatorFn.RSI),
    ],
)
def test_composer_names_of_indicators(alias: str, fn: IndicatorFn) -> None:
    assert condition_left(f'({alias} "TLT" {{:window 20}})') == Indicator(fn, "TLT", 20, at(2, 8))


def test_a_window_may_be_written_positionally() -> None:
    positional = condition_left('(rsi "SPY" 14)')
    assert positional == condition_left('(rsi "SPY" {:window 14})')
    assert positional == Indicator(IndicatorFn.RSI, "SPY", 14, at(2, 8))
    price = condition_left('(current-price "SPY" 2)')
    assert price == Indicator(IndicatorFn.CURRENT_PRICE, "SPY", 2, at(2, 8))
    node = body('(filter (rsi 21) (select-bottom 1) [(asset "A") (asset "B")])')
    assert isinstance(node, Filter)
    assert node.score == Indicator(IndicatorFn.RSI, None, 21, at(2, 9))


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('(if (> (rsi "SPY" 0) 1) [nil])', "2:19", "rsi window must be a positive whole number"),
        ('(if (> (rsi "SPY" 1.5) 1) [nil])', "2:19", "got 1.5"),
        ('(if (> (rsi "SPY" 14 14) 1) [nil])', "2:8", "rsi takes one options map {:window N}"),
        ("(filter (rsi -2) (select-top 1) [nil])", "2:14", "rsi window must be a positive"),
    ],
)
def test_positional_window_errors(text: str, where: str, message: str) -> None:
    caught = problem(wrap(text))
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


def test_equals_is_a_comparator() -> None:
    node = body('(if (= (rsi "SPY" 10) 50) [(asset "A")] [(asset "B")])')
    assert isinstance(node, If)
    assert node.condition.op is Comparator.EQ
    assert node.condition.left == Indicator(IndicatorFn.RSI, "SPY", 10, at(2, 8))


# ---- tickers and asset classes ----


def test_composer_qualified_tickers_are_plain_tickers() -> None:
    text = (
        '(if (> (rsi "EQUITIES::QQQ//USD" 10) 79) [(asset "EQUITIES::SPY//USD" "SPY")]'
        ' [(asset "EQUITIES::BRK/B//USD" "Berkshire") (asset "equities::tlt//usd")])'
    )
    node = body(text)
    assert isinstance(node, If)
    assert node.then == Asset("SPY", "SPY", at(2, 43))
    assert symbols(node) == {"QQQ", "SPY", "BRK.B", "TLT"}


def test_asset_class_equities_is_accepted_in_the_header_and_in_assets() -> None:
    text = wrap(
        '[(asset "SPY" "SPDR" {:asset-class "EQUITIES"}) (asset "TLT" {:asset-class :equities})'
        ' (asset "BIL" nil {:asset-class "EQUITIES"})]',
        '{:asset-class "EQUITIES", :rebalance-frequency :daily}',
    )
    symphony = parse_symphony(text, "s.clj")
    assert symbols(symphony) == {"SPY", "TLT", "BIL"}
    assert symphony.options["asset-class"] == "EQUITIES"
    assets = [node for node in symphony.body.children if isinstance(node, Asset)]  # type: ignore[union-attr]
    assert [(a.ticker, a.description) for a in assets] == [
        ("SPY", "SPDR"),
        ("TLT", None),
        ("BIL", None),
    ]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('(asset "EQUITIES::SPY//EUR")', "2:8", "invalid ticker 'EQUITIES::SPY//EUR'"),
        ('(asset "OPTIONS::SPY//USD")', "2:8", "or EQUITIES::SPY//USD"),
        ('(asset "EQUITIES::SPY")', "2:8", "invalid ticker"),
        ('(asset "SPY" {:asset-class "BONDS"})', "2:28", "unknown :asset-class 'BONDS' in asset"),
        (
            '(asset "SPY" {:asset-clas "EQUITIES"})',
            "2:15",
            "unexpected asset SPY option :asset-clas (did you mean `:asset-class`?)",
        ),
    ],
)
def test_ticker_and_asset_class_errors(text: str, where: str, message: str) -> None:
    caught = problem(wrap(text))
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


# ---- refusals ----


def test_crypto_assets_are_refused() -> None:
    caught = problem(wrap('[(asset "SPY") (asset "CRYPTO::BTC//USD" "Bitcoin")]'))
    assert caught.location == "s.clj:2:23"
    assert (
        "crypto symphonies are not supported: 'CRYPTO::BTC//USD' is a crypto asset"
        in caught.message
    )
    caught = problem(wrap('(if (> (rsi "CRYPTO::ETH//USD" 10) 50) [nil])'))
    assert caught.location == "s.clj:2:13"
    assert "crypto symphonies are not supported" in caught.message


def test_a_crypto_symphony_is_refused_at_its_header() -> None:
    text = wrap('(asset "SPY")', '{:asset-class "CRYPTO", :rebalance-frequency :daily}')
    caught = problem(text)
    assert caught.location == "s.clj:1:32"
    assert (
        "crypto symphonies are not supported: the symphony has :asset-class 'CRYPTO'"
        in caught.message
    )
    caught = problem(wrap('(asset "SPY" nil {:asset-class "CRYPTO"})'))
    assert caught.location == "s.clj:2:32"
    assert "asset SPY has :asset-class 'CRYPTO'" in caught.message


@pytest.mark.parametrize(
    ("text", "where", "name"),
    [
        (
            '(if (> ((unimplemented :percentage-price-oscillator) "SPY" {}) 0) [nil])',
            "2:9",
            "percentage-price-oscillator",
        ),
        (
            "(filter ((unimplemented :some-score) {:window 3}) (select-top 1) [nil])",
            "2:10",
            "some-score",
        ),
        ("((unimplemented :weight-risk-parity) [nil])", "2:2", "weight-risk-parity"),
        ("(unimplemented :weight-risk-parity)", "2:1", "weight-risk-parity"),
        ("(if ((unimplemented :crosses-above) 1 2) [nil])", "2:6", "crosses-above"),
        ("(if (> (unimplemented :thing) 1) [nil])", "2:8", "thing"),
    ],
)
def test_composers_unexported_placeholder_is_refused_by_name(
    text: str, where: str, name: str
) -> None:
    caught = problem(wrap(text))
    assert caught.location == f"s.clj:{where}"
    assert (
        f"Composer could not export `{name}` (it wrote `(unimplemented ...)`): rebuild that block"
        in caught.message
    )


def test_every_placeholder_is_reported() -> None:
    text = wrap(
        "[((unimplemented :a-block) [nil])\n"
        ' (if (> ((unimplemented :an-indicator) "SPY") 1) [(asset "CRYPTO::BTC//USD")])]'
    )
    errors = check_symphony(text, "s.clj")
    assert [(e.location, str(e).split(": ", 1)[1].split(" (")[0]) for e in errors] == [
        ("s.clj:2:3", "Composer could not export `a-block`"),
        ("s.clj:3:10", "Composer could not export `an-indicator`"),
        (
            "s.clj:3:58",
            "crypto symphonies are not supported: 'CRYPTO::BTC//USD' is a crypto asset; only "
            "US stocks and ETFs trade here",
        ),
    ]


# ---- did you mean ----


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            '(weight-inverse-volatilty 10 [(asset "A")])',
            "2:2",
            "unknown operator 'weight-inverse-volatilty' (did you mean "
            "`weight-inverse-volatility`?): expected one of asset,",
        ),
        (
            '(if (> (relative-strength-indx "SPY" 10) 1) [nil])',
            "2:9",
            "unknown indicator the symbol 'relative-strength-indx' (did you mean "
            "`relative-strength-index`?): expected",
        ),
        (
            '(if (> (rsi "SPY" {:windw 10}) 1) [nil])',
            "2:20",
            "unexpected rsi option :windw (did you mean `:window`?): expected one :window",
        ),
        ("(if (>== 1 2) [nil])", "2:5", "got (>== ...) (did you mean `>=`?)"),
        ("(frobnicate)", "2:2", "unknown operator 'frobnicate': expected one of asset"),
    ],
)
def test_unknown_names_suggest_the_closest_known_one(text: str, where: str, message: str) -> None:
    caught = problem(wrap(text))
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message


def test_an_unknown_rebalance_frequency_suggests_one() -> None:
    caught = problem(wrap("nil", "{:rebalance-frequency :weakly}"))
    assert caught.location == "s.clj:1:40"
    assert "unknown :rebalance-frequency :weakly (did you mean `:weekly`?)" in caught.message
