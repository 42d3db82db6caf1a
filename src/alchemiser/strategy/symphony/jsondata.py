"""JSON text to Python data and back, at any depth.

Composer's scores nest several JSON levels per ``if``, so a deep symphony is deeper than
Python's recursion limit, which the standard ``json`` module's C code obeys. ``decode``
tries ``json.loads`` (fast) and, when the document is too deep for it, reads it with an
explicit stack instead; ``encode`` writes with an explicit stack always. Errors are
``StrategyError`` located ``source:line:column``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from alchemiser.errors import StrategyError

_TOKEN = re.compile(
    r"[ \t\n\r]*(?:([{}\[\],:])|(\")|(-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)"
    r"|(true|false|null))"
)
_SCANSTRING: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
"""The standard decoder's string scanner (C): a string's value and where it ends."""
_SPACE = re.compile(r"[ \t\n\r]*")
_LITERALS: dict[str, object] = {"true": True, "false": False, "null": None}

# What the reader expects next.
_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _AFTER, _END = range(7)
_EXPECTED = {
    _VALUE: "a value",
    _VALUE_OR_CLOSE: "a value or ']'",
    _KEY: "a string key",
    _KEY_OR_CLOSE: "a string key or '}'",
    _COLON: "':'",
    _AFTER: "',' or a closing bracket",
    _END: "the end of the document",
}


def decode(text: str, source: str) -> object:
    """The JSON value of ``text``; StrategyError at ``source:line:column`` when malformed."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise StrategyError(
            f"invalid JSON: {error.msg}", location=f"{source}:{error.lineno}:{error.colno}"
        ) from None
    except RecursionError:
        return _decode_deep(text, source)


def _decode_deep(text: str, source: str) -> object:  # noqa: PLR0915 (one flat loop)
    stack: list[list[object] | dict[str, object]] = []
    root: object = None
    key = ""
    state = _VALUE
    position = 0
    while state != _END:
        match = _TOKEN.match(text, position)
        if match is None:
            where = _SPACE.match(text, position)
            at = where.end() if where else position
            got = "the end of the document" if at >= len(text) else repr(text[at])
            raise _error(f"expected {_EXPECTED[state]}, got {got}", text, at, source)
        punctuation, quote, number, fraction, exponent, literal = match.groups()
        position = match.end()
        start = position - len(match.group(0).lstrip(" \t\n\r"))
        value: object
        if punctuation:
            if punctuation in "{[":
                if state not in (_VALUE, _VALUE_OR_CLOSE):
                    raise _unexpected(punctuation, state, text, start, source)
                container: list[object] | dict[str, object] = {} if punctuation == "{" else []
                root, state = _put(stack, key, container, root)
                stack.append(container)
                state = _KEY_OR_CLOSE if punctuation == "{" else _VALUE_OR_CLOSE
            elif punctuation in "}]":
                top = stack[-1] if stack else None
                closes = isinstance(top, dict) if punctuation == "}" else isinstance(top, list)
                ok = (state == _AFTER and closes) or (
                    state == (_KEY_OR_CLOSE if punctuation == "}" else _VALUE_OR_CLOSE)
                )
                if not ok:
                    raise _unexpected(punctuation, state, text, start, source)
                stack.pop()
                state = _AFTER if stack else _END
            elif punctuation == ",":
                if state != _AFTER:
                    raise _unexpected(punctuation, state, text, start, source)
                state = _KEY if isinstance(stack[-1], dict) else _VALUE
            else:  # ':'
                if state != _COLON:
                    raise _unexpected(punctuation, state, text, start, source)
                state = _VALUE
            continue
        if quote:
            try:
                string, position = _SCANSTRING(text, position, True)
            except json.JSONDecodeError as error:
                raise _error(error.msg, text, error.pos, source) from None
            if state in (_KEY, _KEY_OR_CLOSE):
                key, state = string, _COLON
                continue
            value = string
        elif number is not None:
            value = float(number) if fraction or exponent else int(number)
        else:
            value = _LITERALS[literal]
        if state not in (_VALUE, _VALUE_OR_CLOSE):
            raise _unexpected(text[start:position], state, text, start, source)
        root, state = _put(stack, key, value, root)
    rest = _SPACE.match(text, position)
    end = rest.end() if rest else position
    if end < len(text):
        raise _error("extra data after the JSON document", text, end, source)
    return root


def _put(
    stack: list[list[object] | dict[str, object]], key: str, value: object, root: object
) -> tuple[object, int]:
    """Place ``value`` in the open container (or as the root); the state after a value."""
    if not stack:
        return value, _END
    top = stack[-1]
    if isinstance(top, list):
        top.append(value)
    else:
        top[key] = value
    return root, _AFTER


def _unexpected(token: str, state: int, text: str, offset: int, source: str) -> StrategyError:
    return _error(f"expected {_EXPECTED[state]}, got {token[:20]!r}", text, offset, source)


def _error(message: str, text: str, offset: int, source: str) -> StrategyError:
    line = text.count("\n", 0, offset) + 1
    column = offset - text.rfind("\n", 0, offset)
    return StrategyError(f"invalid JSON: {message}", location=f"{source}:{line}:{column}")


_MAX_INDENT = 40
"""Indentation stops growing at this depth: a thousand-deep score stays linear in size."""


def encode(value: object, indent: int = 2) -> str:
    """``value`` as JSON text, indented like ``json.dumps(value, indent=indent)`` (down to
    ``_MAX_INDENT`` levels; deeper ones indent no further), at any depth (values: dicts
    with string keys, lists, str, int, float, bool, None)."""
    parts: list[str] = []
    work: list[tuple[object, int] | str] = [(value, 0)]
    while work:
        item = work.pop()
        if isinstance(item, str):
            parts.append(item)
            continue
        current, depth = item
        if isinstance(current, dict | list) and current:
            inner = "\n" + " " * (indent * min(depth + 1, _MAX_INDENT))
            closing = "\n" + " " * (indent * min(depth, _MAX_INDENT))
            closing += "}" if isinstance(current, dict) else "]"
            parts.append("{" if isinstance(current, dict) else "[")
            pending: list[tuple[object, int] | str] = []
            entries = current.items() if isinstance(current, dict) else enumerate(current)
            for position, (name, child) in enumerate(entries):
                pending.append(("," if position else "") + inner)
                if isinstance(current, dict):
                    pending.append(json.dumps(str(name), ensure_ascii=False) + ": ")
                pending.append((child, depth + 1))
            pending.append(closing)
            work.extend(reversed(pending))
        else:
            parts.append(json.dumps(current, ensure_ascii=False))
    return "".join(parts)
