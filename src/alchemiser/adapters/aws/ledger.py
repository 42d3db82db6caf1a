"""The run ledger in DynamoDB: every attempt of every run kept, append-only, each
recorded in one transaction, read back by run, by account (latest, or one trading day)
and by strategy.

A run is (account, scheduled time) with a deterministic run id; it may be attempted
several times (Lambda retries, SQS redeliveries, a person rerunning it). Each attempt
has its own ``attempt_id`` (its UTC start, then random hex: text order is start
order). An empty ``attempt_id`` (reports from before attempts had ids) is one legacy
attempt under the fixed key ``-``, which sorts before every real attempt id.

Table (``template.yaml`` matches it): partition key ``pk`` (S), sort key ``sk`` (S),
on-demand; GSIs ``by_account`` (``account_pk``, ``run_sk``) and ``by_strategy``
(``strategy_pk``, ``run_sk``), both projecting ALL. Every item of a run has
``pk = RUN#<run_id>``; with ``<attempt>`` the attempt id (or ``-``):

- ``sk = RUN#<attempt>``, the attempt item: the only item with ``account_pk =
  ACCOUNT#<account>``, so ``by_account`` lists attempts. ``run_sk =
  <trading_date>#<attempt>#<run_id>`` sorts them by trading date, then by attempt (a
  legacy attempt sorts by when it was recorded, before the day's real attempts). It
  holds the report (``report.model_dump_json()``, zlib-compressed, Binary) and a
  summary (attempt id, status, mode, orders, fills, turnover, the failure ``reason``,
  and ``dry_run`` = true for a dry run's attempt; its strategy items say so too).
- ``sk = ATTEMPT#<attempt>#STRATEGY#<name>``, one per strategy, in ``by_strategy``:
  allocation, weights (a map of symbol -> N) and the attempt's orders, fills and
  turnover on the strategy's symbols (a symbol held by two strategies counts for both).
- ``sk = ATTEMPT#<attempt>#ORDER#<client_order_id>``, one per order of the attempt:
  the broker's record and its fills, Decimals as strings.
- ``sk = ATTEMPT#<attempt>#REPORT#<recorded_at>#<nnnn>``, only when the compressed
  report exceeds 350 KB (an item holds 400 KB): the report in 350 KB chunks; the
  attempt item then has ``chunks`` instead of ``report``. Chunk keys carry the
  record's ``recorded_at``, so re-recording an attempt never changes the chunks that
  its visible attempt item points to.

Writes: ``record(report)`` creates or replaces one attempt (the service records an
attempt as STARTED when it begins, then again with its final report). It writes and
deletes only keys of that attempt (``RUN#<attempt>`` and ``ATTEMPT#<attempt>#...``):
another attempt's items are never changed or deleted. It is one ``TransactWriteItems``
when the attempt fits (100 items, ~3.5 MB). A larger one is written in several
transactions, the attempt item in the last one, so a visible attempt item means the
whole attempt is there. Items of the same attempt's previous record that the new one
lacks (a strategy, an order, old chunks) are deleted with, or after, the new attempt
item. Any write failure raises: ``record`` returns only once the attempt item is stored.

Reads: ``get_run`` (the latest attempt), ``attempts`` (all, oldest first) and
``finished`` read the run's partition consistently; ``by_account`` / ``by_strategy``
are eventually consistent (an attempt recorded a moment ago may take a second to be
listed). Items of the layout before attempts (``sk = RUN``, ``STRATEGY#<name>``,
``ORDER#...``, ``REPORT#<recorded_at>#<nnnn>``) are still read, as one legacy attempt
that sorts before the run's others: their run item is matched by the same key
condition, so this costs nothing. Every failure is an ``AlchemiserError``:
``LEDGER_UNAVAILABLE`` (AWS refused or could not be reached) or ``LEDGER_MALFORMED``
(an item that does not decode, or an attempt id that cannot be a key).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

from alchemiser.domain.orders import Fill, OrderRecord
from alchemiser.domain.report import Mode, RunReport, RunStatus, StrategyReport, failure_reason
from alchemiser.domain.values import Frozen
from alchemiser.errors import AlchemiserError
from alchemiser.ports import Clock

UNAVAILABLE = "LEDGER_UNAVAILABLE"
MALFORMED = "LEDGER_MALFORMED"
BY_ACCOUNT = "by_account"
BY_STRATEGY = "by_strategy"
RUN_SK = "RUN"
"""The run item of the layout before attempts: read as the run's legacy attempt."""
ATTEMPT_ITEM = "RUN#"
"""Sort-key prefix of attempt items; ``begins_with(sk, RUN_SK)`` finds them and a legacy
run item, and nothing else."""
ATTEMPT_CHILD = "ATTEMPT#"
LEGACY_ATTEMPT = "-"
"""The key of an attempt without an id: sorts before every real attempt id."""
MAX_TRANSACTION_ITEMS = 100
"""DynamoDB's limit of actions in one TransactWriteItems."""
MAX_TRANSACTION_BYTES = 3_500_000
"""Kept under DynamoDB's 4 MB per transaction."""
MAX_INLINE_REPORT = 350_000
"""The largest compressed report kept in the run item itself (an item holds 400 KB)."""
CHUNK_BYTES = 350_000
MAX_REASON = 2_000
_OP_OVERHEAD = 100

Item = dict[str, Any]
"""One DynamoDB item, in the low-level client's attribute-value format."""
T = TypeVar("T")


class StrategyRun(Frozen):
    """One strategy's part in one attempt of a run, as ``runs_for_strategy`` lists it."""

    run_id: str
    attempt_id: str = ""
    account: str
    trading_date: date
    recorded_at: datetime
    status: RunStatus
    mode: Mode
    allocation: float
    weights: dict[str, float]
    orders: int
    """Orders of the attempt on this strategy's symbols."""
    fills: int
    turnover: Decimal
    """Notional filled on this strategy's symbols."""
    failure_reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status.succeeded


# -- Pure item building ------------------------------------------------------------


@dataclass(frozen=True)
class RunItems:
    """Everything one attempt's report is stored as: the attempt item (``run``), and the
    items under it."""

    run: Item
    children: tuple[Item, ...]

    def keys(self) -> set[tuple[str, str]]:
        return {key_of(item) for item in (self.run, *self.children)}


def instant(value: datetime) -> str:
    """A timezone-aware instant as fixed-width ISO 8601 UTC, so text order is time order."""
    if value.tzinfo is None:
        raise ValueError(f"recorded_at must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def run_pk(run_id: str) -> str:
    return f"RUN#{run_id}"


def account_pk(account: str) -> str:
    return f"ACCOUNT#{account}"


def strategy_pk(name: str) -> str:
    return f"STRATEGY#{name}"


def attempt_key(attempt_id: str) -> str:
    """The attempt's part of its keys: its id, or ``-`` for a legacy attempt without one."""
    if "#" in attempt_id:
        # Keys are split on "#": such an id could name another attempt's items.
        raise AlchemiserError(
            f"attempt id {attempt_id!r} contains '#', which the ledger's keys reserve",
            code=MALFORMED,
        )
    return attempt_id or LEGACY_ATTEMPT


def attempt_sk(attempt_id: str) -> str:
    return f"{ATTEMPT_ITEM}{attempt_key(attempt_id)}"


def attempt_prefix(attempt_id: str) -> str:
    """The sort-key prefix of every item under one attempt (and of no other attempt's)."""
    return f"{ATTEMPT_CHILD}{attempt_key(attempt_id)}#"


def run_sort_key(trading_date: date, attempt_id: str, recorded_at: datetime, run_id: str) -> str:
    """Trading date, then attempt (its id is its start; a legacy attempt's recording
    instant, ``2026-...``, sorts before the same day's ids, ``2026...``), then run."""
    position = attempt_id or instant(recorded_at)
    return f"{trading_date.isoformat()}#{position}#{run_id}"


def key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item["pk"]["S"]), str(item["sk"]["S"])


def chunk_prefix(attempt_id: str, recorded_at: str) -> str:
    return f"{attempt_prefix(attempt_id)}REPORT#{recorded_at}#"


def stored_chunk_prefix(run: Mapping[str, Any]) -> str:
    """The chunk prefix of a stored attempt item (or of a legacy run item) (pure)."""
    sk = str(run["sk"]["S"])
    recorded = str(run["recorded_at"]["S"])
    if sk == RUN_SK:
        return f"REPORT#{recorded}#"
    if not sk.startswith(ATTEMPT_ITEM):
        raise ValueError(f"{sk!r} is not an attempt item")
    return f"{ATTEMPT_CHILD}{sk.removeprefix(ATTEMPT_ITEM)}#REPORT#{recorded}#"


def compress_report(report: RunReport) -> bytes:
    return zlib.compress(report.model_dump_json().encode("utf-8"), 6)


def _s(value: object) -> dict[str, str]:
    return {"S": str(value)}


def _n(value: float | int | Decimal) -> dict[str, str]:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise AlchemiserError(
            f"cannot store the non-finite number {value!r} in the ledger", code=MALFORMED
        )
    return {"N": format(number, "f")}


def _summary(orders: Sequence[OrderRecord], fills: Sequence[Fill]) -> Item:
    turnover = sum((f.notional for f in fills), Decimal(0))
    return {"orders": _n(len(orders)), "fills": _n(len(fills)), "turnover": _s(turnover)}


def _reason(report: RunReport) -> Item:
    if report.status.succeeded:
        return {}
    return {"reason": _s(failure_reason(report)[:MAX_REASON])}


def build_items(
    report: RunReport,
    recorded_at: datetime,
    *,
    max_inline: int = MAX_INLINE_REPORT,
    chunk_bytes: int = CHUNK_BYTES,
) -> RunItems:
    """The items that store ``report``, one attempt, recorded at ``recorded_at`` (pure)."""
    pk = run_pk(report.run_id)
    prefix = attempt_prefix(report.attempt_id)
    recorded = instant(recorded_at)
    sort_key = run_sort_key(report.trading_date, report.attempt_id, recorded_at, report.run_id)
    common: Item = {
        "run_id": _s(report.run_id),
        **({"attempt_id": _s(report.attempt_id)} if report.attempt_id else {}),
        "account": _s(report.account),
        "trading_date": _s(report.trading_date.isoformat()),
        "recorded_at": _s(recorded),
        "status": _s(report.status.value),
        "mode": _s(report.mode.value),
        **({"dry_run": {"BOOL": True}} if report.dry_run else {}),
        **_reason(report),
    }
    blob = compress_report(report)
    run: Item = {
        "pk": _s(pk),
        "sk": _s(attempt_sk(report.attempt_id)),
        "account_pk": _s(account_pk(report.account)),
        "run_sk": _s(sort_key),
        **common,
        **_summary(report.orders, report.fills),
        "report_bytes": _n(len(blob)),
    }
    children: list[Item] = [
        strategy_item(report, strategy, prefix, sort_key, common) for strategy in report.strategies
    ]
    fills_by_order: dict[str, list[Fill]] = {}
    for fill in report.fills:
        fills_by_order.setdefault(fill.client_order_id, []).append(fill)
    children += [
        order_item(pk, prefix, order, fills_by_order.get(order.client_order_id, ()), common)
        for order in report.orders
    ]
    if len(blob) <= max_inline:
        run["report"] = {"B": blob}
    else:
        pieces = [blob[i : i + chunk_bytes] for i in range(0, len(blob), chunk_bytes)]
        run["chunks"] = _n(len(pieces))
        children += [
            {
                "pk": _s(pk),
                "sk": _s(f"{chunk_prefix(report.attempt_id, recorded)}{index:04d}"),
                "recorded_at": _s(recorded),
                "data": {"B": piece},
            }
            for index, piece in enumerate(pieces)
        ]
    return RunItems(run=run, children=tuple(children))


def strategy_item(
    report: RunReport, strategy: StrategyReport, prefix: str, sort_key: str, common: Item
) -> Item:
    symbols = set(strategy.weights)
    orders = [o for o in report.orders if o.symbol in symbols]
    fills = [f for f in report.fills if f.symbol in symbols]
    return {
        "pk": _s(run_pk(report.run_id)),
        "sk": _s(f"{prefix}{strategy_pk(strategy.name)}"),
        "strategy_pk": _s(strategy_pk(strategy.name)),
        "run_sk": _s(sort_key),
        **common,
        "strategy": _s(strategy.name),
        "allocation": _n(strategy.allocation),
        "weights": {"M": {symbol: _n(w) for symbol, w in strategy.weights.items()}},
        **_summary(orders, fills),
    }


def order_item(
    pk: str, prefix: str, order: OrderRecord, fills: Iterable[Fill], common: Item
) -> Item:
    record = {k: _s(v) for k, v in order.model_dump(mode="json").items() if v is not None}
    fill_maps = [
        {"M": {"qty": _s(f.qty), "price": _s(f.price), "notional": _s(f.notional)}} for f in fills
    ]
    return {
        "pk": _s(pk),
        "sk": _s(f"{prefix}ORDER#{order.client_order_id}"),
        **{
            k: common[k]
            for k in ("run_id", "attempt_id", "account", "trading_date", "recorded_at")
            if k in common
        },
        **record,
        "fills": {"L": fill_maps},
    }


def attribute_size(value: Any) -> int:
    """An upper estimate of an attribute value's stored size, in bytes."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, Mapping):
        return sum(len(str(k)) + attribute_size(v) + 3 for k, v in value.items())
    if isinstance(value, list | tuple):
        return sum(attribute_size(v) + 3 for v in value)
    return len(str(value))


def plan_transactions(
    table: str, items: RunItems, stale: Iterable[tuple[str, str]]
) -> list[list[Item]]:
    """The TransactWriteItems batches that store ``items`` and delete ``stale`` keys.

    One batch when everything fits. Otherwise the children first, the attempt item in
    the last batch that writes anything, the deletions with it or after it (pure).
    """
    writes = [
        ({"Put": {"TableName": table, "Item": item}}, attribute_size(item) + _OP_OVERHEAD)
        for item in (*items.children, items.run)
    ]
    deletes = [
        (
            {"Delete": {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}},
            len(pk) + len(sk) + _OP_OVERHEAD,
        )
        for pk, sk in sorted(stale)
    ]
    batches: list[list[Item]] = []
    size = 0
    for op, op_size in (*writes, *deletes):
        full = batches and (
            len(batches[-1]) >= MAX_TRANSACTION_ITEMS or size + op_size > MAX_TRANSACTION_BYTES
        )
        if not batches or full:
            batches.append([])
            size = 0
        batches[-1].append(op)
        size += op_size
    return batches


# -- Pure decoding -----------------------------------------------------------------


def _malformed(item: Mapping[str, Any], problem: str) -> AlchemiserError:
    pk = item.get("pk", {}).get("S", "?") if isinstance(item.get("pk"), Mapping) else "?"
    sk = item.get("sk", {}).get("S", "?") if isinstance(item.get("sk"), Mapping) else "?"
    return AlchemiserError(f"ledger item {pk} / {sk} is malformed: {problem}", code=MALFORMED)


def _decoding(item: Mapping[str, Any], decode: Callable[[], T]) -> T:
    try:
        return decode()
    except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation, zlib.error) as error:
        problem = (
            f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        )
        raise _malformed(item, problem) from None


def report_blob(run: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]]) -> bytes:
    """The compressed report of a run item: inline, or joined from its chunks (pure)."""
    if "report" in run:
        return bytes(run["report"]["B"])
    expected = int(run["chunks"]["N"])
    ordered = sorted(chunks, key=lambda c: str(c["sk"]["S"]))
    if len(ordered) != expected:
        raise ValueError(f"{expected} report chunks expected, {len(ordered)} found")
    return b"".join(bytes(c["data"]["B"]) for c in ordered)


def decode_report(run: Mapping[str, Any], chunks: Sequence[Mapping[str, Any]] = ()) -> RunReport:
    def decode() -> RunReport:
        text = zlib.decompress(report_blob(run, chunks)).decode("utf-8")
        return RunReport.model_validate_json(text)

    return _decoding(run, decode)


def stored_status(item: Mapping[str, Any]) -> RunStatus:
    return RunStatus(item["status"]["S"])


def decode_strategy_run(item: Mapping[str, Any]) -> StrategyRun:
    def decode() -> StrategyRun:
        return StrategyRun(
            run_id=item["run_id"]["S"],
            attempt_id=item["attempt_id"]["S"] if "attempt_id" in item else "",
            account=item["account"]["S"],
            trading_date=date.fromisoformat(item["trading_date"]["S"]),
            recorded_at=datetime.fromisoformat(item["recorded_at"]["S"]),
            status=RunStatus(item["status"]["S"]),
            mode=Mode(item["mode"]["S"]),
            allocation=float(item["allocation"]["N"]),
            weights={k: float(v["N"]) for k, v in item["weights"]["M"].items()},
            orders=int(item["orders"]["N"]),
            fills=int(item["fills"]["N"]),
            turnover=Decimal(item["turnover"]["S"]),
            failure_reason=item["reason"]["S"] if "reason" in item else None,
        )

    return _decoding(item, decode)


# -- The adapter -------------------------------------------------------------------


class DynamoLedger:
    """The Ledger port on a DynamoDB table, plus the reads the CLI and watchdog need."""

    def __init__(
        self, table_name: str, client: Any | None = None, *, clock: Clock | None = None
    ) -> None:
        self._table = table_name
        self._client = client
        self._clock = clock

    @property
    def table_name(self) -> str:
        return self._table

    # -- writes --

    def record(self, report: RunReport) -> None:
        """Store one attempt of a run, creating or replacing that attempt only; raises
        LEDGER_UNAVAILABLE unless its attempt item was written."""
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        items = build_items(report, now)
        fresh = items.keys()
        # Only this attempt's own items are candidates for deletion: the query's key
        # condition cannot return another attempt's (ids never contain "#").
        mine = self._keys_under(run_pk(report.run_id), attempt_prefix(report.attempt_id), "record")
        stale = [key for key in mine if key not in fresh]
        batches = plan_transactions(self._table, items, stale)
        client = self._dynamodb("record")
        for index, batch in enumerate(batches):
            where = f"record run {report.run_id} attempt {attempt_key(report.attempt_id)}"
            if len(batches) > 1:
                where += f" (transaction {index + 1} of {len(batches)})"
            self._call(where, partial(client.transact_write_items, TransactItems=batch))

    # -- reads --

    def get_run(self, run_id: str) -> RunReport | None:
        """The latest attempt of ``run_id`` (consistent read), or None."""
        latest = self._attempt_items(run_id, newest_first=True, limit=1)
        return self._report(latest[0]) if latest else None

    def attempts(self, run_id: str) -> list[RunReport]:
        """Every attempt of ``run_id``, oldest first (consistent read)."""
        return [self._report(item) for item in self._attempt_items(run_id)]

    def finished(self, run_id: str) -> RunReport | None:
        """The latest attempt of ``run_id`` whose status is finished, or None."""
        for item in self._attempt_items(run_id, newest_first=True):
            if _decoding(item, partial(stored_status, item)).finished:
                return self._report(item)
        return None

    def superseded(self, run_id: str, attempt_id: str) -> bool:
        """Whether an attempt of ``run_id`` later than ``attempt_id`` is recorded: a STARTED
        attempt that is superseded never finished (its Lambda died or timed out)."""
        latest = self._attempt_items(run_id, newest_first=True, limit=1, keys_only=True)
        return bool(latest) and key_of(latest[0])[1] > attempt_sk(attempt_id)

    def last_runs(self, account: str, n: int) -> list[RunReport]:
        """The latest ``n`` attempts of ``account``'s runs, newest first (by trading date,
        then by attempt); each report carries its ``attempt_id`` and status."""
        items = self._query_index(
            BY_ACCOUNT, "account_pk = :pk", {":pk": _s(account_pk(account))}, n
        )
        return [self._report(item) for item in items]

    def run_on(self, account: str, trading_date: date) -> list[RunReport]:
        """Every attempt of ``account``'s runs whose trading date is ``trading_date``,
        newest first."""
        items = self._query_index(
            BY_ACCOUNT,
            "account_pk = :pk AND begins_with(run_sk, :day)",
            {":pk": _s(account_pk(account)), ":day": _s(f"{trading_date.isoformat()}#")},
            None,
        )
        return [self._report(item) for item in items]

    def runs_for_strategy(self, name: str, n: int) -> list[StrategyRun]:
        """The latest ``n`` attempts of strategy ``name`` (in any account), newest first."""
        items = self._query_index(
            BY_STRATEGY, "strategy_pk = :pk", {":pk": _s(strategy_pk(name))}, n
        )
        return [decode_strategy_run(item) for item in items]

    # -- plumbing --

    def _dynamodb(self, action: str) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415 - boto3 costs half a second to import
            from botocore.exceptions import BotoCoreError  # noqa: PLC0415

            try:
                self._client = boto3.client("dynamodb")
            except BotoCoreError as error:
                raise self._unavailable(action, error) from None
        return self._client

    def _unavailable(self, action: str, error: Exception) -> AlchemiserError:
        text = str(error).strip()
        detail = text.splitlines()[0][:300] if text else ""
        return AlchemiserError(
            f"cannot {action} in DynamoDB table {self._table!r}: {type(error).__name__}: {detail}",
            code=UNAVAILABLE,
        )

    def _call(self, action: str, request: Callable[[], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            return request()
        except (BotoCoreError, ClientError) as error:
            raise self._unavailable(action, error) from None

    def _pages(self, action: str, **query: Any) -> Iterator[list[Item]]:
        client = self._dynamodb(action)
        start: Item | None = None
        while True:
            extra = {"ExclusiveStartKey": start} if start is not None else {}
            page = self._call(
                action, partial(client.query, TableName=self._table, **query, **extra)
            )
            yield list(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

    def _keys_under(self, pk: str, prefix: str, action: str) -> list[tuple[str, str]]:
        pages = self._pages(
            action,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": _s(pk), ":prefix": _s(prefix)},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        return [_decoding(item, partial(key_of, item)) for page in pages for item in page]

    def _attempt_items(
        self,
        run_id: str,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        keys_only: bool = False,
    ) -> list[Item]:
        """The run's attempt items (and a legacy run item) in attempt order: ``RUN`` <
        ``RUN#-`` < ``RUN#<attempt id>``, the order of their start."""
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :run)",
            "ExpressionAttributeValues": {":pk": _s(run_pk(run_id)), ":run": _s(RUN_SK)},
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            query["Limit"] = limit
        if keys_only:
            query["ProjectionExpression"] = "pk, sk"
        found: list[Item] = []
        for page in self._pages(f"read run {run_id}", **query):
            found += page
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def _query_index(self, index: str, condition: str, values: Item, n: int | None) -> list[Item]:
        if n is not None and n <= 0:
            return []
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if n is not None:
            query["Limit"] = n
        found: list[Item] = []
        for page in self._pages("read", **query):
            found += page
            if n is not None and len(found) >= n:
                return found[:n]
        return found

    def _report(self, run: Item) -> RunReport:
        if "report" in run or "chunks" not in run:
            return decode_report(run)
        pk, _ = _decoding(run, lambda: key_of(run))
        prefix = _decoding(run, lambda: stored_chunk_prefix(run))
        chunks = [
            item
            for page in self._pages(
                "read",
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues={":pk": _s(pk), ":prefix": _s(prefix)},
                ConsistentRead=True,
            )
            for item in page
        ]
        return decode_report(run, chunks)
