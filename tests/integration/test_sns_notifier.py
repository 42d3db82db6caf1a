"""SnsNotifier against moto's SNS, read back through an SQS subscription: a degraded run's
subject says so, and its JSON carries the degraded reasons, the holdings left alone and
the earlier attempts' orders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from alchemiser.adapters.aws.notifier import SnsNotifier
from alchemiser.domain.account import UnmanagedPosition
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.orders import OrderRecord, OrderStatus, Side
from alchemiser.domain.report import Mode, RunReport, RunStatus
from tests.integration.aws_stack import assert_valid_subject

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, Any]]:
    for name in list(os.environ):
        if name.startswith(("AWS_", "ALCHEMISER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKENOTIFIERKEY0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-notifier-secret-never-printed")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="alchemiser-reports")["TopicArn"]
        url = sqs.create_queue(QueueName="capture")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        yield arn, url, sns


def test_a_degraded_report_reaches_subscribers_saying_so(
    topic: tuple[str, str, Any],
) -> None:
    arn, url, sns = topic
    earlier = OrderRecord(
        client_order_id="20260731-0123456789-buy-SPY-1",
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal(3),
        status=OrderStatus.FILLED,
        filled_qty=Decimal(3),
    )
    report = RunReport(
        run_id="20260731-0123456789",
        attempt_id="20260731T133012Z-5f3a9c",
        account="ira",
        as_of=date(2026, 7, 30),
        trading_date=date(2026, 7, 31),
        scheduled_time=None,
        mode=Mode.PAPER,
        trading_state=TradingState.ACTIVE,
        status=RunStatus.COMPLETED,
        degraded=("buy SPY shrunk by risk (POSITION_WEIGHT_EXCEEDS_MAX)",),
        unmanaged=(UnmanagedPosition(symbol="XYZ", qty=Decimal(10), asset_class="us_equity"),),
        earlier_orders=(earlier,),
    )
    SnsNotifier(arn, sns).publish(report)
    messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url)
    (message,) = messages["Messages"]
    envelope = json.loads(message["Body"])
    assert_valid_subject(envelope["Subject"])
    assert envelope["Subject"].startswith(
        "[alchemiser] ira 2026-07-31: COMPLETED (degraded: buy SPY shrunk by risk"
    )
    document = json.loads(envelope["Message"])
    assert document["degraded"] == list(report.degraded)
    assert document["unmanaged"][0]["symbol"] == "XYZ"
    assert document["attempt_id"] == report.attempt_id
    assert [o["client_order_id"] for o in document["earlier_orders"]] == [earlier.client_order_id]
