"""Logging that cannot carry a key, whatever level the root logger is at.

The Lambda runtime sets the root logger to the function's ApplicationLogLevel; at
DEBUG botocore would log the whole GetSecretValue response (the broker's key pair) and
the signed request (the session token). Two defences, installed once by every entry
point (alchemiser.observability at import, which every handler imports; the CLI's main):

- the AWS libraries' loggers (and any child set lower) are pinned at INFO, so their
  DEBUG output is never produced;
- a filter on the product's handlers (the Powertools logger's, the root logger's, and
  logging's last resort) masks the value of ``SecretString``, ``SecretBinary``, any
  ``APCA-API-*`` header, ``Authorization`` and ``X-Amz-Security-Token`` wherever it
  appears in a record: the message, its arguments and the extra fields.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

PINNED_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
PINNED_LEVEL = logging.INFO
MASK = "***"

_NAMES = r"SecretString|SecretBinary|APCA-API-[A-Za-z0-9-]+|Authorization|X-Amz-Security-Token"
_SENSITIVE_KEY = re.compile(rf"(?:{_NAMES})", re.IGNORECASE)
_SENSITIVE_AT = re.compile(
    rf"(?<![A-Za-z0-9_-])(?:{_NAMES})(?:\\*[\"'])?[ \t]*[:=][ \t]*", re.IGNORECASE
)
_UNQUOTED_END = re.compile(r"[&\r\n]")
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
_MAX_DEPTH = 20


def _backslashes_before(text: str, index: int, floor: int) -> int:
    count = 0
    while index - count - 1 >= floor and text[index - count - 1] == "\\":
        count += 1
    return count


def _value_span(text: str, start: int) -> tuple[int, int]:
    """Where the value that begins at ``start`` lies (the part to mask): inside its
    quotes, however deeply escaped (a quote escaped as deep as the opening one closes
    it; quotes inside are escaped deeper), or else up to the end of the line or of a
    query-string pair."""
    at = start
    if text.startswith(("b'", 'b"'), at):
        at += 1
    opening = at
    while opening < len(text) and text[opening] == "\\":
        opening += 1
    if opening < len(text) and text[opening] in "\"'":
        depth = opening - at
        quote = text[opening]
        position = opening + 1
        while position < len(text):
            if (
                text[position] == quote
                and _backslashes_before(text, position, opening + 1) == depth
            ):
                return opening + 1, position - depth
            position += 1
        return opening + 1, len(text)
    end = _UNQUOTED_END.search(text, start)
    return start, end.start() if end else len(text)


def redact_text(text: str) -> str:
    """``text`` with the value of every sensitive name masked."""
    if not _SENSITIVE_AT.search(text):
        return text
    pieces: list[str] = []
    position = 0
    while True:
        found = _SENSITIVE_AT.search(text, position)
        if found is None:
            break
        begin, end = _value_span(text, found.end())
        pieces.append(text[position:begin])
        if end > begin:
            pieces.append(MASK)
        position = max(end, found.end())
    pieces.append(text[position:])
    return "".join(pieces)


def redact(value: Any, depth: int = 0) -> Any:
    """``value`` with secrets masked: strings and bytes by their text, mappings also by
    their keys, sequences item by item (a ``(name, value)`` pair by its name). Anything
    else is returned as it is, unless its text holds a secret (then its redacted text)."""
    if depth > _MAX_DEPTH:
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        text = bytes(value).decode("utf-8", errors="backslashreplace")
        masked = redact_text(text)
        return value if masked == text else masked.encode("utf-8")
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if isinstance(key, str) and _SENSITIVE_KEY.fullmatch(key)
                else redact(item, depth + 1)
            )
            for key, item in value.items()
        }
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and _SENSITIVE_KEY.fullmatch(value[0])
    ):
        return [value[0], MASK] if isinstance(value, list) else (value[0], MASK)
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact(item, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        if isinstance(value, list):
            return items
        return set(items) if isinstance(value, set | frozenset) else tuple(items)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    masked = redact_text(text)
    return value if masked == text else masked


class RedactingFilter(logging.Filter):
    """Masks secrets in a record in place; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, Mapping):
            record.msg = redact(record.msg)
        else:
            try:
                message = record.getMessage()
            except (TypeError, ValueError, KeyError):
                # A malformed record: mask its parts; logging reports the mismatch.
                record.msg = redact(record.msg)
                record.args = redact(record.args)
            else:
                masked = redact_text(message)
                if masked != message:
                    record.msg = masked
                    record.args = None
        for name, value in list(vars(record).items()):
            if name in _STANDARD_ATTRIBUTES:
                continue
            if _SENSITIVE_KEY.fullmatch(name):
                setattr(record, name, MASK)
            else:
                setattr(record, name, redact(value))
        return True


def pin_library_loggers() -> None:
    """The AWS libraries' loggers, and any of their children set lower, at INFO or
    above: never DEBUG, whatever the root logger is set to now or later."""
    for name in PINNED_LOGGERS:
        library = logging.getLogger(name)
        if library.level < PINNED_LEVEL:
            library.setLevel(PINNED_LEVEL)
    for name, child in list(logging.Logger.manager.loggerDict.items()):
        if (
            isinstance(child, logging.Logger)
            and name.startswith(tuple(f"{p}." for p in PINNED_LOGGERS))
            and logging.NOTSET < child.level < PINNED_LEVEL
        ):
            child.setLevel(PINNED_LEVEL)


def _add_filter(handler: logging.Handler) -> None:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(RedactingFilter())


def secure_logging(*handlers: logging.Handler) -> None:
    """Pin the AWS libraries' loggers and put the redaction filter on ``handlers``, on
    the root logger's handlers and on logging's last resort. Idempotent."""
    pin_library_loggers()
    every = [*handlers, *logging.getLogger().handlers]
    if logging.lastResort is not None:
        every.append(logging.lastResort)
    for handler in every:
        _add_filter(handler)
