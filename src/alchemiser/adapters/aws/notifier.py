"""Run reports to an SNS topic: a text a person reads in an email, and the JSON.

One message per run, whatever its outcome (completed, no-op, skipped holiday, failed),
published with ``MessageStructure="json"``: email subscribers get the text, every other
protocol (SQS, Lambda, HTTPS) gets the RunReport as JSON.
"""

from __future__ import annotations

import json
from typing import Any

from alchemiser.domain.report import RunReport, failure_reason
from alchemiser.errors import AlchemiserError
from alchemiser.render import render_report, status_text

SUBJECT_LIMIT = 100
MESSAGE_LIMIT = 250_000
"""SNS takes 256 KB per message; a longer report is cut (the ledger has it whole)."""


class NotificationFailed(AlchemiserError):
    code = "NOTIFICATION_FAILED"


def subject(report: RunReport) -> str:
    """What happened, in an inbox's one line: a degraded run says so next to its status."""
    if report.status.succeeded:
        status = status_text(report)
    else:
        tag = " (degraded)" if report.degraded else ""
        tag += " (dry run)" if report.dry_run else ""
        status = f"{report.status.value.upper()}{tag} - {failure_reason(report)}"
    text = _printable(f"[alchemiser] {report.account} {report.trading_date.isoformat()}: {status}")
    return text[: SUBJECT_LIMIT - 3] + "..." if len(text) > SUBJECT_LIMIT else text


def _printable(text: str) -> str:
    """SNS refuses a Subject with a line break or anything but printable ASCII, and the
    degraded reasons and error messages it quotes are free text."""
    flat = " ".join(text.split())
    return "".join(c if " " <= c <= "~" else "?" for c in flat)


def email_text(report: RunReport) -> str:
    degraded = ", degraded" if report.degraded else ""
    degraded += ", dry run: nothing was submitted or cancelled" if report.dry_run else ""
    head = f"Run {report.run_id} for account {report.account}: {report.status.value}{degraded}.\n"
    if not report.status.succeeded:
        head += f"Why: {failure_reason(report)}\n"
    head += "".join(f"Degraded: {reason}\n" for reason in report.degraded)
    return head + "\n" + render_report(report)


def failure_text(account: str, what: str, error: BaseException) -> str:
    """For a run that failed before it could produce a report."""
    code = getattr(error, "code", type(error).__name__)
    return f"Account {account}: {what} failed before a report could be made.\n{code}: {error}\n"


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "\n... (cut)"


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = client

    def _sns(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415

            self._client = boto3.client("sns")
        return self._client

    def _publish(self, subject_line: str, text: str, document: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        message = json.dumps({"default": _cut(document), "email": _cut(text)})
        if len(message.encode()) > MESSAGE_LIMIT:
            message = json.dumps({"default": _cut(text), "email": _cut(text)})
        try:
            self._sns().publish(
                TopicArn=self.topic_arn,
                Subject=subject_line,
                Message=message,
                MessageStructure="json",
            )
        except (BotoCoreError, ClientError) as error:
            raise NotificationFailed(
                f"cannot publish to {self.topic_arn}: {type(error).__name__}: {str(error)[:300]}"
            ) from None

    def publish(self, report: RunReport) -> None:
        self._publish(subject(report), email_text(report), report.model_dump_json())

    def publish_failure(self, account: str, what: str, error: BaseException) -> None:
        text = failure_text(account, what, error)
        document = json.dumps(
            {
                "account": account,
                "status": "failed",
                "error": {
                    "code": getattr(error, "code", type(error).__name__),
                    "message": str(error),
                },
            }
        )
        self._publish(
            f"[alchemiser] {account}: FAILED before a report"[:SUBJECT_LIMIT], text, document
        )

    def publish_notice(self, subject_line: str, text: str) -> None:
        """A message that is not a run's report (the watchdog's)."""
        self._publish(subject_line[:SUBJECT_LIMIT], text, json.dumps({"notice": text}))
