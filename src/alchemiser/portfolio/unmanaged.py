"""Which holdings the plan manages, and which it leaves alone.

``partition_unmanaged`` splits an account snapshot before ``diff`` sees it. Holdings of
other asset classes (crypto, options, symbols of shapes the product does not know) are
already set aside by the broker adapter in ``snapshot.unmanaged``; with
``unmanaged_positions = "keep"`` equity positions that no strategy holds or watches join
them. Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Collection

from alchemiser.domain.account import AccountSnapshot, UnmanagedPosition
from alchemiser.domain.values import ZERO
from alchemiser.portfolio.diff import DiffPolicy

EQUITY_CLASS = "us_equity"


def partition_unmanaged(
    snapshot: AccountSnapshot, universe: Collection[str], policy: DiffPolicy
) -> tuple[AccountSnapshot, tuple[UnmanagedPosition, ...]]:
    """The snapshot the plan sees, and every holding it leaves alone.

    With ``policy.unmanaged_positions == "sell"`` (the default) the snapshot is returned
    unchanged: an equity position outside ``universe`` stays in ``positions``, its target
    is 0 and ``diff`` sells it. With ``"keep"`` every non-zero position whose symbol is not
    in ``universe`` moves from ``positions`` to ``unmanaged`` (asset class ``us_equity``,
    no market value: the plan prices only what it manages).

    Either way the second value is everything left alone: what the broker already put
    aside (``snapshot.unmanaged``) followed by the positions moved here, and the returned
    snapshot's ``unmanaged`` says the same. The returned cash and positions are all the
    plan sees, so the plan's equity excludes unmanaged holdings: targets are fractions of
    what the product manages, and risk never orders an unmanaged symbol. The broker's own
    ``equity`` figure is passed on as reported (it counts every holding): check the
    snapshot's consistency before partitioning it, not after.
    """
    if policy.unmanaged_positions == "sell":
        return snapshot, snapshot.unmanaged
    managed = frozenset(universe)
    kept = []
    moved = []
    for position in snapshot.positions:
        if position.symbol in managed or position.qty == ZERO:
            kept.append(position)
        else:
            moved.append(
                UnmanagedPosition(
                    symbol=position.symbol, qty=position.qty, asset_class=EQUITY_CLASS
                )
            )
    if not moved:
        return snapshot, snapshot.unmanaged
    unmanaged = snapshot.unmanaged + tuple(moved)
    partitioned = snapshot.model_copy(update={"positions": tuple(kept), "unmanaged": unmanaged})
    return partitioned, unmanaged
