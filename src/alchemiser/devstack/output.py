"""Reading what an invocation printed: Powertools JSON log lines made readable
(``pretty_logs``), tracebacks condensed (``condense``) and CloudWatch EMF metrics
extracted (``emf_metrics``).
"""

from __future__ import annotations

import json
from typing import Any

LONG_VALUE = 200
LOG_NOISE = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "stack_trace",
        "exception_name",
    }
)


def _json_line(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def emf_metrics(line: str) -> list[tuple[str, Any]]:
    """The (name, value) pairs of one CloudWatch EMF line (none for any other line)."""
    record = _json_line(line)
    if record is None or not isinstance(record.get("_aws"), dict):
        return []
    pairs = []
    for directive in record["_aws"].get("CloudWatchMetrics", []):
        for metric in directive.get("Metrics", []):
            value = record.get(metric["Name"])
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            pairs.append((str(metric["Name"]), value))
    return pairs


def number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def wrap(items: list[str], width: int) -> list[str]:
    """``items`` joined with ", " in lines of at most ``width`` (an item is never split)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > LONG_VALUE:
        return f"{text[:LONG_VALUE]}... ({len(text)} chars)"
    return text


def condense(lines: list[str]) -> list[str]:
    """Each Python traceback in ``lines`` as one line: its depth and the exception."""
    out: list[str] = []
    frames: int | None = None
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            frames = 0
            continue
        if frames is not None:
            if line.startswith("  File "):
                frames += 1
                continue
            if line.startswith(" ") or not line.strip():
                continue
            out.append(f"  [traceback, {frames} frames] {line}")
            frames = None
            continue
        if line.strip():
            out.append(line.rstrip())
    if frames is not None:
        out.append(f"  [traceback, {frames} frames]")
    return out


def pretty_logs(logs: str) -> list[str]:
    """Powertools JSON log lines as ``time LEVEL message key=value``, EMF lines left out
    (see ``emf_metrics``), tracebacks condensed, anything else as it is."""
    lines: list[str] = []
    raw: list[str] = []
    for line in logs.splitlines():
        record = _json_line(line)
        if record is not None and "_aws" in record:
            continue
        if record is None or "message" not in record or "level" not in record:
            raw.append(line)
            continue
        lines += condense(raw)
        raw = []
        stamp = str(record.get("timestamp", ""))
        clock = stamp[11:23] if len(stamp) >= 23 else stamp
        extras = [
            f"{key}={_short(value)}"
            for key, value in record.items()
            if key not in LOG_NOISE and key != "exception"
        ]
        message = _short(record["message"])
        lines.append(f"{clock} {record['level']:<7} {message}  {' '.join(extras)}".rstrip())
        if isinstance(record.get("exception"), str):
            lines += condense(record["exception"].splitlines())
    return lines + condense(raw)
