"""Settings: one TOML file (or the embedded default) parsed into frozen pydantic models.

Every problem becomes a ConfigError naming the field path, e.g.
``strategies[1].weights.SPY: Input should be greater than or equal to 0``.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, NamedTuple, TypeGuard, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from alchemiser.adapters.alpaca.policy import (
    LIVE_TRADING_URL,
    PAPER_TRADING_URL,
    AlpacaConfig,
    mode_url_refusal,
)
from alchemiser.adapters.files.text import read_capped_text
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import TradingWindow
from alchemiser.domain.report import Mode
from alchemiser.domain.targets import WEIGHT_TOLERANCE
from alchemiser.domain.values import Frozen, Symbol, normalise_symbol
from alchemiser.errors import ConfigError, did_you_mean
from alchemiser.execution.procedure import ExecutionPolicy
from alchemiser.portfolio.diff import DiffPolicy
from alchemiser.portfolio.risk import RiskLimits
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule

DEFAULT_CONFIG = "default.toml"
MAX_CONFIG_BYTES = 1 << 20
"""A config file larger than this (1 MiB) is refused unread."""
MERGED_TABLES = ("alpaca", "risk", "rebalance")
"""An account's entry changes these key by key; anything else it gives replaces."""
URL_FIELDS = ("alpaca.trading_url", "alpaca.data_url")
"""An account's bad URL is reported under these fields, as the top level's would be."""


class _FieldRefused(ValueError):
    """A model validator's refusal of one nested field: the ConfigError names ``field``
    (a model validator's own errors have no location)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


ParameterName = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9_.:/-]+$")]
"""An SSM Parameter Store name (``/alchemiser/trading-state``) or its ARN."""


class FixedStrategyConfig(Frozen):
    """Constant weights; by default traded back to them every session. A rebalance rule
    (``rebalance_frequency``, ``rebalance_threshold``) lets them drift in between."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.-]+$")]
    kind: Literal["fixed"] = "fixed"
    allocation: float = Field(gt=0, le=1)
    weights: dict[Symbol, Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]]
    rebalance_frequency: RebalanceFrequency | None = None
    """Default: daily, or none when a threshold is given (as in a symphony header)."""
    rebalance_threshold: float | None = Field(default=None, allow_inf_nan=False)
    anchor: date | None = None
    """Holdings start at the first session on or after this date (default: the first
    session of the history the run has)."""

    @field_validator("rebalance_threshold")
    @classmethod
    def _corridor(cls, threshold: float | None) -> float | None:
        if threshold is not None and threshold >= 1:
            raise ValueError(
                f"{threshold:g} is a fraction of the portfolio below 1: write 0.05 for 5 points"
            )
        if threshold is not None and threshold <= 0:
            raise ValueError("must be above 0 (0.05 = 5 points); leave it out for no corridor")
        return threshold

    @model_validator(mode="after")
    def _threshold_needs_a_frequency_it_can_act_on(self) -> FixedStrategyConfig:
        if self.rebalance_frequency is RebalanceFrequency.DAILY and self.rebalance_threshold:
            raise ValueError(
                "rebalance_threshold with rebalance_frequency 'daily' has no effect: every "
                "session rebalances; use 'none' for a corridor alone"
            )
        return self

    @property
    def rule(self) -> RebalanceRule:
        frequency = self.rebalance_frequency or (
            RebalanceFrequency.NONE if self.rebalance_threshold else RebalanceFrequency.DAILY
        )
        return RebalanceRule(frequency, self.rebalance_threshold)

    @field_validator("weights", mode="before")
    @classmethod
    def _one_key_per_symbol(cls, weights: object) -> object:
        """``spy`` and ``SPY`` (or ``BRK/B`` and ``BRK.B``) are one symbol: refuse both."""
        if isinstance(weights, dict):
            seen: dict[str, str] = {}
            for key in weights:
                try:
                    symbol = normalise_symbol(str(key))
                except ValueError:
                    continue  # reported, with its key, by the field's own validation
                if symbol in seen:
                    raise ValueError(f"{seen[symbol]!r} and {key!r} are the same symbol {symbol}")
                seen[symbol] = str(key)
        return weights

    @field_validator("weights")
    @classmethod
    def _sum_at_most_one(cls, weights: dict[str, float]) -> dict[str, float]:
        if not weights:
            raise ValueError("a fixed strategy needs at least one weight")
        total = math.fsum(weights.values())
        if total > 1 + WEIGHT_TOLERANCE:
            raise ValueError(f"weights sum to {total:g}; they must sum to at most 1")
        return weights


class SymphonyStrategyConfig(Frozen):
    """A symphony: a built-in by name, or a file (relative to the config file)."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 _.-]+$")]
    kind: Literal["symphony"]
    allocation: float = Field(gt=0, le=1)
    builtin: str | None = None
    file: Path | None = None
    anchor: date | None = None
    """Holdings start at the first decidable session on or after this date (default: the
    first decidable session of the history the run has). Matters only for a symphony with
    a rebalance frequency or threshold."""

    @model_validator(mode="after")
    def _one_source(self) -> SymphonyStrategyConfig:
        if (self.builtin is None) == (self.file is None):
            raise ValueError("a symphony strategy needs exactly one of 'builtin' or 'file'")
        return self


STRATEGY_KINDS = ("fixed", "symphony")


def _strategy_kind(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "fixed"))
    return str(getattr(value, "kind", "fixed"))


StrategyConfig = Annotated[
    Annotated[FixedStrategyConfig, Tag("fixed")]
    | Annotated[SymphonyStrategyConfig, Tag("symphony")],
    Discriminator(
        _strategy_kind,
        custom_error_type="strategy_kind",
        custom_error_message="kind must be 'fixed' or 'symphony'",
    ),
]


class SimConfig(Frozen):
    starting_cash: Decimal = Field(default=Decimal(100_000), gt=0, le=Decimal(10**12))
    slippage_bps: Decimal = Field(default=Decimal(5), ge=0, le=1000)
    fee_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000)
    """Commission on each fill's notional (Alpaca charges none on US equities)."""
    whole_share_symbols: frozenset[Symbol] = frozenset()


class DataConfig(Frozen):
    """Where a simulated run, a backtest and ``check`` read daily prices. The one rule
    (docs/CONFIG.md, [data]): ``--prices DIR`` on the command line, else ``dir`` here
    (relative to the config file), else the prices bundled with the package."""

    dir: Path | None = None
    """A folder of ``<TICKER>.csv[.gz]`` files (``alchemiser data fetch`` writes one);
    unset: the bundled demo prices."""
    max_staleness_days: int = Field(default=5, ge=0, le=30)
    """Calendar days allowed between the latest data session and the trading date."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, document: object) -> object:
        if isinstance(document, dict) and ("source" in document or "path" in document):
            raise ValueError(
                "'source' and 'path' were replaced by one key: dir = \"prices\" (a folder "
                "of <TICKER>.csv files, relative to the config file); leave it out for the "
                "bundled prices"
            )
        return document


class AccountConfig(Frozen):
    """One more account in a multi-account config: its name, and what differs from the
    file's top level (its own secret and limits, usually)."""

    account: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    mode: Mode | None = None
    trading_state: TradingState | None = None
    trading_state_parameter: ParameterName | None = None
    trading_window: TradingWindow | None = None
    dry_run: bool | None = None
    strategies: tuple[StrategyConfig, ...] | None = None
    alpaca: dict[str, Any] | None = None
    """Keys of ``[alpaca]`` that differ, e.g. ``{secret_id = "stack/ira"}``."""
    risk: dict[str, Any] | None = None
    """Keys of ``[risk]`` that differ; the others are the top level's."""
    rebalance: dict[str, Any] | None = None


class AppConfig(Frozen):
    # A rejected value is never echoed, not even in the chained ValidationError: the
    # file may hold an account number.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    account: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = (
        "default"
    )
    broker: Literal["sim", "alpaca"] = "sim"
    mode: Mode = Mode.SIM
    """``sim`` with the simulated broker; ``paper`` or ``live`` with Alpaca."""
    trading_state: TradingState = TradingState.ACTIVE
    trading_state_parameter: ParameterName | None = None
    """The kill switch in SSM: paper and live runs (and the Lambda, when its environment
    names none) trade under the stricter of it and ``trading_state``, and fail before
    any broker request when it cannot be read."""
    trading_window: TradingWindow = TradingWindow.OPEN
    """``open``: decide on the previous session's close, trade at the open (09:30).
    ``close``: decide and trade 15 minutes before the close on each symbol's latest
    price (Composer's window). Backtests and simulated runs fill the same way."""
    dry_run: bool = False
    """Do everything a run does (secret, account, market data, strategies, diff, risk,
    the report, a ledger row marked dry-run) except submit or cancel orders."""
    strategies: tuple[StrategyConfig, ...] = Field(min_length=1)
    rebalance: DiffPolicy = DiffPolicy()
    risk: RiskLimits = RiskLimits()
    execution: ExecutionPolicy = ExecutionPolicy()
    sim: SimConfig = SimConfig()
    data: DataConfig = DataConfig()
    alpaca: AlpacaConfig | None = None
    accounts: tuple[AccountConfig, ...] = ()
    """More accounts (multi-account deployments): each runs with the top level's settings
    overridden by its own entry. Without any, the file describes one account."""

    @field_validator("mode")
    @classmethod
    def _not_backtest(cls, mode: Mode) -> Mode:
        if mode is Mode.BACKTEST:
            raise ValueError("mode must be 'sim', 'paper' or 'live' (a backtest sets its own)")
        return mode

    @model_validator(mode="after")
    def _broker_and_mode(self) -> AppConfig:
        if self.broker == "sim" and self.mode is not Mode.SIM:
            raise ValueError(f"mode {self.mode.value!r} needs broker = 'alpaca'")
        if self.broker == "alpaca":
            if self.mode is Mode.SIM:
                raise ValueError("broker 'alpaca' needs mode = 'paper' or 'live'")
            if self.alpaca is None:
                raise ValueError("broker 'alpaca' needs an [alpaca] table with secret_id")
        return self

    @model_validator(mode="after")
    def _urls_fit_mode(self) -> AppConfig:
        """Alpaca's URLs are checked against the mode here, at load, before any secret
        is read or request sent (their form is checked by AlpacaConfig itself)."""
        if self.broker != "alpaca" or self.alpaca is None:
            return self
        refusal = mode_url_refusal(self.mode is Mode.LIVE, self.trading_url, self.alpaca.data_url)
        if refusal is not None:
            field, message = refusal
            raise _FieldRefused(message, field=field)
        return self

    @model_validator(mode="after")
    def _accounts_valid(self) -> AppConfig:
        """Names unique, every account's merged settings valid, and no two accounts on
        one Alpaca account (one secret, or one pinned number): they would trade against
        each other every day. One pass over the accounts."""
        if not self.accounts:
            return self
        seen: set[str] = set()
        duplicates: set[str] = set()
        for entry in self.accounts:
            (duplicates if entry.account in seen else seen).add(entry.account)
        if duplicates:
            raise ValueError(f"account names must be unique: {', '.join(sorted(duplicates))}")
        # An account that keeps the top level's strategies is checked with the first of
        # them only: their names and allocations were checked here, and no other check
        # reads them, so each account costs its own entry, not every strategy again.
        top = self._top_level() | {"strategies": self.strategies[:1]}
        by_secret: dict[str, str] = {}
        by_number: dict[str, str] = {}
        for entry in self.accounts:
            merged = _merge(top, entry)
            if merged.broker != "alpaca" or merged.alpaca is None:
                continue
            secret = merged.alpaca.secret_id
            if secret in by_secret:
                raise ValueError(
                    f"accounts {by_secret[secret]!r} and {entry.account!r} use the same "
                    f"alpaca.secret_id {secret!r}: each account needs its own secret"
                )
            by_secret[secret] = entry.account
            if merged.alpaca.account_number is not None:
                # Never name the number itself: it identifies a brokerage account.
                number = merged.alpaca.account_number.upper()
                if number in by_number:
                    raise ValueError(
                        f"accounts {by_number[number]!r} and {entry.account!r} pin the same "
                        "alpaca.account_number: each account needs its own Alpaca account"
                    )
                by_number[number] = entry.account
        return self

    def _top_level(self) -> dict[str, Any]:
        """The settings every account starts from, as a document to merge entries over:
        the merged tables as plain dicts, every other value as validated here (pydantic
        takes a model instance as it is, so each account costs its own entry only)."""
        top: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "accounts" or value is None:
                continue
            top[name] = value.model_dump(exclude_none=True) if name in MERGED_TABLES else value
        return top

    def account_names(self) -> list[str]:
        """The accounts this config runs: its ``[[accounts]]``, or its one ``account``."""
        return [a.account for a in self.accounts] or [self.account]

    def for_account(self, name: str) -> AppConfig:
        """The settings of one account: the top level with its entry applied."""
        if not self.accounts:
            if name != self.account:
                raise ConfigError(f"no account {name!r} in this config", field="accounts")
            return self
        for entry in self.accounts:
            if entry.account == name:
                return _merge(self._top_level(), entry)
        raise ConfigError(f"no account {name!r} in this config", field="accounts")

    @property
    def trading_url(self) -> str:
        """The Alpaca trading base URL: configured, or the mode's own."""
        if self.alpaca is not None and self.alpaca.trading_url is not None:
            return self.alpaca.trading_url.rstrip("/")
        return LIVE_TRADING_URL if self.mode is Mode.LIVE else PAPER_TRADING_URL

    @model_validator(mode="after")
    def _allocations(self) -> AppConfig:
        counts = Counter(s.name for s in self.strategies)
        duplicates = sorted(name for name, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"strategy names must be unique: {', '.join(duplicates)}")
        total = math.fsum(s.allocation for s in self.strategies)
        if total > 1 + WEIGHT_TOLERANCE:
            raise ValueError(f"strategy allocations sum to {total:g}; they must sum to at most 1")
        return self


def _merge(top: dict[str, Any], entry: AccountConfig) -> AppConfig:
    """One account's settings: ``top`` (the file's top level) with ``entry`` applied."""
    document = dict(top)
    for key, value in entry.model_dump(exclude_none=True).items():
        if key in MERGED_TABLES:
            document[key] = {**document.get(key, {}), **value}
        else:
            document[key] = value
    try:
        return AppConfig.model_validate(document)
    except ValidationError as error:
        problems = _problems(error)
        if len(problems) == 1 and (problems[0].refused or problems[0].path in URL_FIELDS):
            path, message = problems[0].path, problems[0].message
            raise _FieldRefused(f"account {entry.account!r}: {message}", field=path) from None
        listed = "; ".join(f"{p.path}: {p.message}" for p in problems)
        raise ValueError(f"account {entry.account!r}: {listed}") from None


class _Problem(NamedTuple):
    path: str
    message: str
    refused: bool
    """A model validator's refusal of a named field (``_FieldRefused``)."""


def _problems(error: ValidationError) -> list[_Problem]:
    """Every problem of ``error``, each with its path: unknown keys first, each with the
    known key it likely misspells, and a required key that is missing right after the
    unknown key that likely misspells it; then the rest in the order pydantic found them.
    A collection's "too short" that only counts its items that failed is left out: the
    items' own problems say what is wrong."""
    details = error.errors()
    unknown: list[tuple[ErrorDetails, str]] = []
    others: list[ErrorDetails] = []
    for detail in details:
        location = detail["loc"]
        if detail["type"] == "too_short" and any(
            len(other["loc"]) > len(location) and other["loc"][: len(location)] == location
            for other in details
        ):
            continue
        if detail["type"] == "extra_forbidden" and location:
            model = _model_at(location[:-1])
            known = model.model_fields if model is not None else ()
            unknown.append((detail, did_you_mean(str(location[-1]), known)))
        else:
            others.append(detail)
    ordered: list[_Problem] = []
    for detail, suggestion in unknown:
        ordered.append(_Problem(_field_path(detail["loc"]), f"not a known key{suggestion}", False))
        parent = detail["loc"][:-1]
        for other in [o for o in others if o["type"] == "missing" and o["loc"][:-1] == parent]:
            if suggestion and suggestion == f" (did you mean `{other['loc'][-1]}`?)":
                others.remove(other)
                ordered.append(_problem(other))
    return ordered + [_problem(detail) for detail in others]


def _problem(detail: ErrorDetails) -> _Problem:
    refused = detail.get("ctx", {}).get("error")
    if isinstance(refused, _FieldRefused):
        return _Problem(refused.field, str(refused), True)
    return _Problem(_field_path(detail["loc"]), detail["msg"].removeprefix("Value error, "), False)


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model whose keys ``location`` holds (``strategies.0.fixed``: the
    fixed strategy's), or None when it holds no model's keys."""
    candidates = _members(AppConfig)
    for part in location:
        following: list[tuple[Any, tuple[Any, ...]]] = []
        for kind, metadata in candidates:
            if isinstance(part, int):
                if get_origin(kind) in (tuple, list):
                    following += _members(get_args(kind)[0])
            elif any(isinstance(tag, Tag) and tag.tag == part for tag in metadata):
                following.append((kind, ()))
            elif _is_model(kind) and part in kind.model_fields:
                following += _members(kind.model_fields[part].annotation)
        candidates = following
    return next((kind for kind, _ in candidates if _is_model(kind)), None)


def _is_model(kind: Any) -> TypeGuard[type[BaseModel]]:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _members(annotation: Any) -> list[tuple[Any, tuple[Any, ...]]]:
    """The types ``annotation`` may be, each with the metadata (a union member's
    ``Tag``) it was annotated with."""
    if get_origin(annotation) is Annotated:
        inner, *metadata = get_args(annotation)
        return [(kind, (*inner_metadata, *metadata)) for kind, inner_metadata in _members(inner)]
    if get_origin(annotation) in (Union, UnionType):
        return [member for argument in get_args(annotation) for member in _members(argument)]
    return [(annotation, ())]


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    previous: int | str | None = None
    for part in location:
        # "[key]" marks a dict key; a strategy kind after a list index is the union's tag.
        skip = part == "[key]" or (isinstance(previous, int) and part in STRATEGY_KINDS)
        previous = part
        if skip:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "config"


def parse_config(document: dict[str, object], source: str) -> AppConfig:
    try:
        return AppConfig.model_validate(document)
    except ValidationError as error:
        problems = _problems(error)
        if len(problems) == 1:
            raise ConfigError(
                f"{problems[0].message} [in {source}]", field=problems[0].path
            ) from error
        listed = "".join(f"\n  {p.path}: {p.message}" for p in problems)
        raise ConfigError(
            f"{len(problems)} problems [in {source}]:{listed}",
            fields=[p.path for p in problems],
        ) from error


def load_config(path: Path | None = None) -> AppConfig:
    """Read ``path``, or the embedded default when ``path`` is None."""
    if path is None:
        source = f"<embedded {DEFAULT_CONFIG}>"
        text = resources.files("alchemiser.defaults").joinpath(DEFAULT_CONFIG).read_text("utf-8")
    else:
        source = str(path)
        text = read_capped_text(
            path, MAX_CONFIG_BYTES, lambda reason: ConfigError(f"cannot read {path}: {reason}")
        )
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    except ValueError as error:  # TOMLDecodeError, or an integer of over 4,300 digits
        raise ConfigError(f"{source}: not valid TOML: {error}") from error
    if path is not None:
        _anchor_files(document, path.parent)
    return parse_config(document, source)


def _anchor_files(document: dict[str, object], base: Path) -> None:
    """Symphony files and the price directory named in a config are relative to the
    config file, not the cwd."""
    strategies = document.get("strategies")
    if isinstance(strategies, list):
        for strategy in strategies:
            if isinstance(strategy, dict) and isinstance(strategy.get("file"), str):
                strategy["file"] = str(base / strategy["file"])
    data = document.get("data")
    if isinstance(data, dict) and isinstance(data.get("dir"), str):
        data["dir"] = str(base / data["dir"])
