"""What a local session leaves behind, printed at its end: the ledger rows, the SNS
messages published, the queues' depths and (``--alpaca``) the orders the local exchange
accepted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from alchemiser.devstack.aws import Aws
from alchemiser.devstack.delivery import MAX_BATCHES
from alchemiser.devstack.functions import declared_functions

if TYPE_CHECKING:
    from alchemiser.devstack.session import Session


def summary(session: Session) -> None:
    _ledger_rows(session)
    _published(session)
    _queues(session)
    if session.exchange is not None:
        orders = session.exchange.engine.accepted_orders()
        session.emit("")
        session.emit(f"== the local exchange accepted {len(orders)} order(s)")
        for order in orders:
            size = f"qty {order.qty}" if order.qty is not None else f"${order.notional}"
            session.emit(
                f"  {order.symbol:<6} {order.side:<4} {size:<18} {order.status:<10} "
                f"{order.client_order_id}"
            )


def _ledger_rows(session: Session) -> None:
    tables = sorted(
        {
            session.spec(name).environment.get("ALCHEMISER_LEDGER_TABLE", "")
            for name in declared_functions(session.template)
        }
        - {""}
    )
    for table in tables:
        items = scan_runs(session.aws, table)
        session.emit("")
        session.emit(f"== ledger {table}: {len(items)} run(s)")
        for item in items:
            reason = f"  {item['reason']}" if item.get("reason") else ""
            session.emit(
                f"  {item['run_id']}  {item['account']}  {item['trading_date']}  "
                f"{item['status']}  orders={item['orders']} fills={item['fills']}{reason}"
            )


def _published(session: Session) -> None:
    for logical_id, url in session.taps.items():
        subjects = drain_subjects(session.aws, url)
        session.emit("")
        session.emit(f"== SNS {session.stack[logical_id].name}: {len(subjects)} message(s)")
        for subject in subjects:
            session.emit(f"  {subject}")


def _queues(session: Session) -> None:
    sqs = session.aws.client("sqs")
    depths = []
    for resource in session.stack.values():
        if resource.type != "AWS::SQS::Queue":
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=resource.ref,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        depths.append(
            f"{resource.logical_id:<26} {attributes['ApproximateNumberOfMessages']} waiting, "
            f"{attributes['ApproximateNumberOfMessagesNotVisible']} in flight"
        )
    if depths:
        session.emit("")
        session.emit("== queues")
        for depth in depths:
            session.emit("  " + depth)


def scan_runs(aws: Aws, table: str) -> list[dict[str, str]]:
    """The attempt items of a ledger table (``sk = RUN#<attempt>``, or a legacy ``RUN``),
    oldest trading date first."""
    rows = []
    paginator = aws.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="begins_with(sk, :run)",
        ExpressionAttributeValues={":run": {"S": "RUN"}},
        ConsistentRead=True,
    ):
        for item in page.get("Items", []):
            rows.append(
                {
                    key: str(next(iter(item[key].values())))
                    for key in (
                        "run_id",
                        "account",
                        "trading_date",
                        "status",
                        "orders",
                        "fills",
                        "reason",
                        "run_sk",
                    )
                    if key in item
                }
            )
    return sorted(rows, key=lambda row: row.get("run_sk", ""))


def drain_subjects(aws: Aws, queue_url: str) -> list[str]:
    """The subjects of the SNS notifications delivered to an SQS queue."""
    sqs = aws.client("sqs")
    subjects = []
    for _ in range(MAX_BATCHES):
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            envelope = json.loads(message["Body"])
            subjects.append(str(envelope.get("Subject") or "(no subject)"))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return subjects
