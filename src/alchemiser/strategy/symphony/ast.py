"""The symphony tree: what the parser builds and the evaluator walks.

Every node carries the ``Location`` of the form it came from, so evaluation errors and
the decision trace can point at file:line:column. Nodes are frozen dataclasses: the
tree is built once and shared, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Location:
    """Where a form starts in its source: ``source:line:column``, counted from 1."""

    source: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True, eq=False)
class ScoreLocation(Location):
    """Where a node of a JSON score sits: its path from the root, like
    ``children[0].children[1].lhs-fn`` (a decoded JSON value has no line; ``line`` and
    ``column`` are 0). Printed ``source:path``, or the source alone for the root.

    Each location holds its parent and its own part of the path (``.children``, ``[0]``),
    not the whole path: a thousand-deep score would otherwise hold a path per node as long
    as its depth. Equal when source and path are."""

    parent: ScoreLocation | None = field(default=None, repr=False)
    part: str = ""

    @classmethod
    def of(cls, source: str, path: str = "") -> ScoreLocation:
        return cls(source, 0, 0, None, path)

    def child(self, part: str) -> ScoreLocation:
        """The location ``part`` (``.name`` or ``[i]``) below this one."""
        return ScoreLocation(self.source, 0, 0, self, part)

    @property
    def path(self) -> str:
        parts: list[str] = []
        here: ScoreLocation | None = self
        while here is not None:
            parts.append(here.part)
            here = here.parent
        return "".join(reversed(parts)).removeprefix(".")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScoreLocation):
            return NotImplemented
        return (self.source, self.path) == (other.source, other.path)

    def __hash__(self) -> int:
        return hash((self.source, self.path))

    def __str__(self) -> str:
        path = self.path
        return f"{self.source}:{path}" if path else self.source


class IndicatorFn(StrEnum):
    """The indicators of docs/SYMPHONY.md, by the names symphony text uses."""

    CURRENT_PRICE = "current-price"
    MOVING_AVERAGE_PRICE = "moving-average-price"
    EXPONENTIAL_MOVING_AVERAGE_PRICE = "exponential-moving-average-price"
    RSI = "relative-strength-index"
    CUMULATIVE_RETURN = "cumulative-return"
    MOVING_AVERAGE_RETURN = "moving-average-return"
    STDEV_RETURN = "stdev-return"
    STDEV_PRICE = "stdev-price"
    MAX_DRAWDOWN = "max-drawdown"
    PPO = "percentage-price-oscillator"
    PPO_SIGNAL = "percentage-price-oscillator-signal"


@dataclass(frozen=True, slots=True)
class Indicator:
    """``(fn "TICKER" {:window n})``; inside a filter ``ticker`` is None (each candidate).

    The percentage price oscillators take ``{:short-window s :long-window l}`` (and the
    signal ``:smooth-window m``) instead of ``:window``: ``params`` holds them as
    ``(("long-window", l), ("short-window", s), ...)``, sorted by name, defaults filled
    in; ``window`` is then the history the indicator needs
    (``names.oscillator_history``: the long window, plus the smooth window for the
    signal)."""

    fn: IndicatorFn
    ticker: str | None
    window: int
    location: Location
    params: tuple[tuple[str, int], ...] = ()

    def param(self, name: str) -> int:
        """One of ``params`` by name (KeyError when the indicator has no such option)."""
        return dict(self.params)[name]


@dataclass(frozen=True, slots=True)
class Number:
    """A constant side of a condition: the ``70`` of ``(> (relative-strength-index ...) 70)``."""

    value: float
    location: Location


Operand = Indicator | Number


class Comparator(StrEnum):
    GT = ">"
    LT = "<"
    GE = ">="
    LE = "<="
    EQ = "="


@dataclass(frozen=True, slots=True)
class Condition:
    """An ``if``'s test: ``left op right``, on every date."""

    op: Comparator
    left: Operand
    right: Operand
    location: Location


@dataclass(frozen=True, slots=True)
class Asset:
    """``(asset "TICKER" ...)``: the capital reaching it holds one ticker."""

    ticker: str
    """Normalised to Alpaca's spelling (``BRK/B`` -> ``BRK.B``)."""
    description: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class WeightEqual:
    """``(weight-equal [NODE ...])``: the children share the capital equally."""

    children: tuple[Node, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class WeightSpecified:
    """``weight-specified``: each child gets its own fixed fraction of the capital."""

    weights: tuple[float, ...]
    """Fractions summing to at most 1 (percent weights are divided by 100 when parsed)."""
    children: tuple[Node, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class WeightInverseVolatility:
    """``(weight-inverse-volatility WINDOW [NODE ...])``: the children share the capital
    in inverse proportion to their volatility over ``window``."""

    window: int
    children: tuple[Node, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Group:
    """``(group "label" [NODE])``: a named sub-portfolio around one child."""

    label: str
    child: Node
    location: Location


@dataclass(frozen=True, slots=True)
class If:
    """``(if CONDITION [THEN] [ELSE])``: the capital goes to ``then`` where the condition
    holds and to ``otherwise`` elsewhere."""

    condition: Condition
    then: Node
    otherwise: Node
    location: Location


class Selection(StrEnum):
    TOP = "select-top"
    BOTTOM = "select-bottom"


@dataclass(frozen=True, slots=True)
class Filter:
    """``(filter (SCORE {:window N}) (select-top N) [NODE ...])``: the ``count`` best
    scored children share the capital equally."""

    score: Indicator
    """The candidate-relative indicator (``ticker`` is None)."""
    selection: Selection
    count: int
    children: tuple[Node, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Cash:
    """An empty branch (``nil``, ``[]``): its weight stays in cash."""

    location: Location


Node = Asset | WeightEqual | WeightSpecified | WeightInverseVolatility | Group | If | Filter | Cash


class RebalanceFrequency(StrEnum):
    """``:rebalance-frequency``: the sessions on which a strategy trades back to its targets."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class RebalanceRule:
    """When a strategy trades back to its targets; between rebalances holdings drift.

    ``threshold`` is a corridor in absolute weight points (0.05 = 5 points): trade back
    when some holding is more than that away from its target. None: no corridor.
    """

    frequency: RebalanceFrequency = RebalanceFrequency.DAILY
    threshold: float | None = None

    @property
    def every_session(self) -> bool:
        """Daily without a corridor: holdings are the targets on every session."""
        return self.frequency is RebalanceFrequency.DAILY and self.threshold is None


@dataclass(frozen=True, slots=True)
class Symphony:
    """A whole symphony: its name, header options, body and rebalancing rule."""

    name: str
    options: dict[str, object]
    body: Node
    location: Location
    rebalance: RebalanceRule = RebalanceRule()
    """The header's ``:rebalance-frequency`` and ``:rebalance-threshold``, validated."""


def children(node: Node) -> tuple[Node, ...]:
    """A node's direct children, in order (the one definition every walk uses)."""
    if isinstance(node, WeightEqual | WeightSpecified | WeightInverseVolatility | Filter):
        return node.children
    if isinstance(node, Group):
        return (node.child,)
    if isinstance(node, If):
        return (node.then, node.otherwise)
    return ()
