"""Lambda's SQS event source mapping, locally: what an invocation queued is delivered to
the function subscribed to that queue in batches of its BatchSize (``pump``); the
messages of a successful batch are deleted, failed ones left; on a repeat whose send was
deduplicated, the first delivery's messages come again (``redeliver``).
"""

from __future__ import annotations

from typing import Any

from alchemiser.devstack.functions import SqsSource, declared_functions
from alchemiser.devstack.session import Sent, Session
from alchemiser.devstack.template import Resource

MAX_BATCHES = 100
"""A queue drained in more batches than this in one go is a loop, not a backlog."""


def sources(session: Session) -> list[tuple[str, SqsSource]]:
    return [
        (name, source)
        for name in declared_functions(session.template)
        for source in session.spec(name).sqs_sources
        if source.queue in session.stack
    ]


def pump(session: Session, delivery: int) -> int:
    """Deliver what is visible in every queue with an SQS event source to its function,
    in batches of its BatchSize; delete what succeeded. Returns the batches run."""
    batches = 0
    for function, source in sources(session):
        queue = session.stack[source.queue]
        for _ in range(MAX_BATCHES):
            messages = (
                session.aws.client("sqs")
                .receive_message(
                    QueueUrl=queue.ref,
                    MaxNumberOfMessages=max(1, min(10, source.batch_size)),
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                    WaitTimeSeconds=0,
                )
                .get("Messages", [])
            )
            if not messages:
                break
            batches += 1
            _deliver(session, function, source, queue, messages, delivery)
    return batches


def _deliver(
    session: Session,
    function: str,
    source: SqsSource,
    queue: Resource,
    messages: list[dict[str, Any]],
    delivery: int,
) -> None:
    event = sqs_event(messages, queue.attributes["Arn"], session.aws.region)
    groups = sorted({str(m.get("Attributes", {}).get("MessageGroupId", "-")) for m in messages})
    session.emit("")
    session.emit(
        f"{queue.logical_id} -> {function}: {len(messages)} message(s) "
        f"(group {', '.join(groups)}; receive #"
        f"{messages[0].get('Attributes', {}).get('ApproximateReceiveCount', '?')})"
    )
    repeated = [
        m
        for m in messages
        if (queue.logical_id, m.get("Attributes", {}).get("MessageDeduplicationId"))
        in session.delivered
        and m.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
    ]
    if repeated:
        session.emit(
            "note: in AWS the FIFO queue would have dropped this repeated send (the same "
            "MessageDeduplicationId within 5 minutes; moto forgets it once the message is "
            "deleted). Delivered anyway: a repeat past the 5-minute window, or SQS's "
            "at-least-once delivery, reaches the worker just like this"
        )
    invocation = session.invoke(function, event, delivery, f"an SQS event from {queue.name}")
    if invocation.exit_code != 0:
        failed = {str(m["MessageId"]) for m in messages}
    elif source.report_failures:
        failed = set(invocation.failed_items)
    else:
        failed = set()
    for message in messages:
        attributes = message.get("Attributes", {})
        taken = Sent(
            queue.logical_id,
            str(message["Body"]),
            attributes.get("MessageGroupId"),
            attributes.get("MessageDeduplicationId"),
            str(message["ReceiptHandle"]),
        )
        if str(message["MessageId"]) not in failed:
            session.aws.client("sqs").delete_message(
                QueueUrl=queue.ref, ReceiptHandle=message["ReceiptHandle"]
            )
            taken.deleted = True
        session.taken.append(taken)
        if taken.dedup_id is not None:
            session.delivered.add((queue.logical_id, taken.dedup_id))
    deleted = len(messages) - len(failed)
    note = f"{queue.logical_id}: {deleted} message(s) deleted"
    if failed:
        note += (
            f", {len(failed)} left (SQS delivers it again after the visibility timeout; "
            "after the queue's maxReceiveCount it goes to the dead-letter queue)"
        )
    session.emit(note)


def redeliver(session: Session, delivery: int) -> None:
    """On a repeat whose queue send was deduplicated: deliver the first delivery's
    messages again, as SQS would (a failed one after its visibility timeout, a deleted
    one when sent again past the deduplication window)."""
    first = [t for t in session.taken if t.queue in session.stack]
    if not first:
        return
    session.emit(
        "nothing new in the queue: the FIFO queue deduplicated the repeated send (the "
        "same MessageDeduplicationId within 5 minutes)."
    )
    if any(not t.deleted for t in first):
        session.emit(
            "The message of the failed run is still in the queue: made visible again, as "
            "SQS does when its visibility timeout ends."
        )
    if any(t.deleted for t in first):
        session.emit(
            "Sending the delivered message(s) again with a new deduplication id, as a "
            "repeat past the 5-minute window would."
        )
    sqs = session.aws.client("sqs")
    seen: set[tuple[str, str]] = set()
    for taken in first:
        key = (taken.queue, taken.body)
        if key in seen:
            continue
        seen.add(key)
        url = session.stack[taken.queue].ref
        if not taken.deleted:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=taken.receipt_handle, VisibilityTimeout=0
            )
            continue
        request: dict[str, Any] = {"QueueUrl": url, "MessageBody": taken.body}
        if taken.group_id is not None:
            request["MessageGroupId"] = taken.group_id
            request["MessageDeduplicationId"] = f"{taken.dedup_id or 'local'}-{delivery}"[:128]
        sqs.send_message(**request)
    session.taken = []
    pump(session, delivery)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    records = []
    for message in messages:
        attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": value.get("StringListValues", []),
                        "binaryListValues": value.get("BinaryListValues", []),
                        "dataType": value.get("DataType"),
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody"),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}
