"""Checks of the values inside forms: strings, tickers, whole numbers, and the options
maps (the symphony header, an asset's, an indicator's). Each raises a ``StrategyError``
at the form's location."""

from __future__ import annotations

import math

from alchemiser.errors import StrategyError, did_you_mean
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule
from alchemiser.strategy.symphony.names import (
    CRYPTO,
    CRYPTO_REFUSAL,
    EQUITIES,
    CryptoTicker,
    composer_ticker,
)
from alchemiser.strategy.symphony.reader import (
    Form,
    KeywordForm,
    ListForm,
    MapForm,
    NilForm,
    NumberForm,
    StringForm,
    describe,
    to_data,
)


def window_option(form: MapForm, name: str) -> int | None:
    """``{:window N}``: N, or None for an empty map."""
    window = None
    for key, value in form.pairs:
        if not isinstance(key, KeywordForm) or key.name != "window" or window is not None:
            hint = did_you_mean(describe(key), [":window"])
            raise form_error(
                f"unexpected {name} option {describe(key)}{hint}: expected one :window", key
            )
        window = positive_int(value, f"{name} window")
    return window


def oscillator_options(
    options: tuple[Form, ...], name: str, defaults: dict[str, int], form: ListForm
) -> dict[str, int]:
    """The oscillator's ``{:short-window S :long-window L}`` (and ``:smooth-window M``),
    defaults filled in; the short window must be the shorter."""
    usage = " ".join(f":{key} {value}" for key, value in defaults.items())
    if len(options) > 1 or (options and not isinstance(options[0], MapForm)):
        raise form_error(f"{name} takes one options map {{{usage}}} after its ticker", form)
    given: dict[str, int] = {}
    pairs = options[0].pairs if options and isinstance(options[0], MapForm) else ()
    for key, value in pairs:
        option = key.name if isinstance(key, KeywordForm) else ""
        if option not in defaults:
            known = [f":{known}" for known in defaults]
            hint = did_you_mean(describe(key), known)
            raise form_error(
                f"unexpected {name} option {describe(key)}{hint}: expected {', '.join(known)}",
                key,
            )
        given[option] = positive_int(value, f"{name} :{option}")
    params = defaults | given
    short, long = params["short-window"], params["long-window"]
    if short >= long:
        raise form_error(
            f"{name} :short-window ({short}) must be shorter than :long-window ({long})",
            options[0] if options else form,
        )
    return params


def string_of(form: Form, what: str) -> str:
    """The text of a string form; ``what`` names it in the error."""
    if not isinstance(form, StringForm):
        raise form_error(f"{what} must be a string, got {describe(form)}", form)
    return form.value


def ticker_of(form: Form) -> str:
    """A ticker in any spelling Composer writes, as Alpaca spells it; crypto refused."""
    try:
        return composer_ticker(string_of(form, 'ticker (like "SPY")'))
    except CryptoTicker:
        raise form_error(
            f"{CRYPTO_REFUSAL}: {describe(form)} is a crypto asset; only US stocks and ETFs "
            "trade here",
            form,
        ) from None
    except ValueError:
        raise form_error(
            f"invalid ticker {describe(form)}: expected one like SPY, BRK/B or EQUITIES::SPY//USD",
            form,
        ) from None


def check_asset_class(form: Form, owner: str, *, only: bool) -> None:
    """Checks ``:asset-class`` in an options map: "EQUITIES" is accepted, "CRYPTO" refused.
    ``only``: it is the map's one allowed option (an asset's map; the header has others)."""
    for key, value in form.pairs if isinstance(form, MapForm) else ():
        option = key.name if isinstance(key, KeywordForm) else getattr(key, "value", None)
        if option != "asset-class" and only:
            hint = did_you_mean(describe(key), [":asset-class"])
            raise form_error(
                f"unexpected {owner} option {describe(key)}{hint}: expected :asset-class", key
            )
        if option != "asset-class":
            continue
        written = getattr(value, "value", None) or getattr(value, "name", None)
        asset_class = written.upper() if isinstance(written, str) else None
        if asset_class == CRYPTO:
            raise form_error(
                f"{CRYPTO_REFUSAL}: {owner} has :asset-class {describe(value)}; only US stocks "
                "and ETFs trade here",
                value,
            )
        if asset_class != EQUITIES:
            raise form_error(
                f'unknown :asset-class {describe(value)} in {owner}: expected "{EQUITIES}"',
                value,
            )


def positive_int(form: Form, what: str) -> int:
    """A whole number of 1 or more (a window, a count)."""
    if not isinstance(form, NumberForm) or type(form.value) is not int or form.value < 1:
        raise form_error(f"{what} must be a positive whole number, got {describe(form)}", form)
    return form.value


def options_map(form: Form) -> dict[str, object]:
    """The options map as plain Python: keyword keys and keyword values become strings."""
    options = to_data(form) if isinstance(form, MapForm) else None
    if not isinstance(options, dict):
        raise form_error(f"expected an options map {{:key value ...}}, got {describe(form)}", form)
    return options


_FREQUENCIES = {frequency.value: frequency for frequency in RebalanceFrequency}


def rebalance_rule(form: Form) -> RebalanceRule:
    """``:rebalance-frequency`` and ``:rebalance-threshold`` of the options map, checked.

    A threshold without a frequency means frequency ``:none`` (only the corridor, and a
    change of the held set, trade); with an explicit ``:daily`` it could never matter.
    """
    given: dict[str, Form] = {}
    for key, value in form.pairs if isinstance(form, MapForm) else ():
        name = key.name if isinstance(key, KeywordForm) else getattr(key, "value", None)
        if name in ("rebalance-frequency", "rebalance-threshold"):
            given[name] = value
    frequency = None
    written = given.get("rebalance-frequency")
    if written is not None:
        word = written.name if isinstance(written, KeywordForm) else None
        frequency = _FREQUENCIES.get(word or "")
        if frequency is None:
            choices = ", ".join(f":{f.value}" for f in RebalanceFrequency)
            hint = did_you_mean(describe(written), [f":{f.value}" for f in RebalanceFrequency])
            raise form_error(
                f"unknown :rebalance-frequency {describe(written)}{hint}: expected one of "
                f"{choices}",
                written,
            )
    threshold = None
    corridor = given.get("rebalance-threshold")
    if corridor is not None and not isinstance(corridor, NilForm):
        if not isinstance(corridor, NumberForm) or not math.isfinite(corridor.value):
            raise form_error(
                f":rebalance-threshold must be a number like 0.05 (5 weight points) or nil, "
                f"got {describe(corridor)}",
                corridor,
            )
        threshold = float(corridor.value)
        if threshold >= 1:
            raise form_error(
                f":rebalance-threshold {describe(corridor)} is a fraction of the portfolio "
                "below 1: write 0.05 for 5 points",
                corridor,
            )
        if threshold <= 0:
            raise form_error(
                f":rebalance-threshold {describe(corridor)} must be above 0 (0.05 = 5 points), "
                "or nil for no corridor",
                corridor,
            )
        if frequency is RebalanceFrequency.DAILY:
            raise form_error(
                ":rebalance-threshold with :rebalance-frequency :daily has no effect: every "
                "session rebalances; use :rebalance-frequency :none for a corridor alone",
                corridor,
            )
    if frequency is None:
        frequency = RebalanceFrequency.DAILY if threshold is None else RebalanceFrequency.NONE
    return RebalanceRule(frequency, threshold)


def form_error(message: str, form: Form) -> StrategyError:
    return StrategyError(message, location=str(form.location))
