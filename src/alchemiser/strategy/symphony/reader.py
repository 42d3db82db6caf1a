"""Reading symphony text (EDN / Clojure-like s-expressions) into located forms.

``read`` is the first of two stages: it knows brackets, strings, numbers, keywords and
symbols, and nothing about symphonies (that is ``parser.py``). Every form keeps the
``Location`` it started at, so later errors can point at file:line:column. ``to_data``
turns data forms (an options map) into plain Python; ``describe`` names a form in errors.

Two constraints shape the code. Real files reach 2 MB, so one compiled regex does the
scanning and the loop does as little per lexeme as it can. Symphonies nest more than a
thousand levels deep, so brackets are matched with an explicit stack: no recursion,
whatever the depth. Both make reading linear in the size of the text.
"""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import Location


@dataclass(frozen=True, slots=True)
class ListForm:
    items: tuple[Form, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class VectorForm:
    items: tuple[Form, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class MapForm:
    """``{k v ...}``: pairs in the order written (duplicate keys are the parser's call)."""

    pairs: tuple[tuple[Form, Form], ...]
    location: Location


@dataclass(frozen=True, slots=True)
class StringForm:
    value: str
    location: Location


@dataclass(frozen=True, slots=True)
class NumberForm:
    """An int when written without point or exponent (``10``), else a float (``0.5``)."""

    value: int | float
    location: Location


@dataclass(frozen=True, slots=True)
class KeywordForm:
    """``:window``; ``name`` is without the colon."""

    name: str
    location: Location


@dataclass(frozen=True, slots=True)
class SymbolForm:
    name: str
    location: Location


@dataclass(frozen=True, slots=True)
class NilForm:
    location: Location


@dataclass(frozen=True, slots=True)
class BoolForm:
    value: bool
    location: Location


Form = (
    ListForm
    | VectorForm
    | MapForm
    | StringForm
    | NumberForm
    | KeywordForm
    | SymbolForm
    | NilForm
    | BoolForm
)

# Characters that end an atom.
_DELIMITERS = r"\s,;()\[\]{}\""
_END = rf"(?![^{_DELIMITERS}])"
_SYMBOL_CHARS = r"A-Za-z0-9*+!_?<>=&%$.\-'/:#"
# Each match is the whitespace and comments before a lexeme, then the lexeme. Skipping
# them inside the pattern is what makes scanning fast (a search that fails at every
# blank would cost a regex attempt per character of indentation), and the possessive
# quantifiers never backtrack. Every other character starts some alternative, ``bad``
# included, and ``end`` matches at the end, so no search ever fails or rescans.
# The order of the groups matters: ``_read`` tells openers, closers and atoms apart by
# comparing group numbers, the cheapest test there is.
_TOKEN = re.compile(
    rf"""
    (?:[\s,]++|;[^\n]*+)*+
    (?:
      (?P<open_list>\() | (?P<open_vector>\[) | (?P<open_map>\{{)
    | (?P<close_list>\)) | (?P<close_vector>\]) | (?P<close_map>\}})
    | (?P<symbol>(?![+\-.]?[0-9])[A-Za-z*+!_?<>=&%$.\-/][{_SYMBOL_CHARS}]*{_END})
    | (?P<string>"[^"\\]*+(?:\\.[^"\\]*+)*+")
    | (?P<int>[+-]?(?:0|[1-9][0-9]*){_END})
    | (?P<float>[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?{_END})
    | (?P<keyword>:[A-Za-z0-9*+!_?<>=&%$.\-'/#][{_SYMBOL_CHARS}]*{_END})
    | (?P<bad>[^{_DELIMITERS}]+|")
    | (?P<end>\Z)
    )
    """,
    re.VERBOSE | re.DOTALL,
)
_LIST, _VECTOR, _MAP, _CLOSE_LIST, _CLOSE_VECTOR, _CLOSE_MAP = range(1, 7)
_SYMBOL, _STRING, _INT, _FLOAT, _KEYWORD, _BAD, _END_OF_TEXT = range(7, 14)
assert list(_TOKEN.groupindex.values()) == list(range(1, 14))
_BRACKETS = " ([{)]}"  # indexed by group number
_CLOSES = 3  # a closer's group number minus its opener's
_LOOKS_NUMERIC = re.compile(r"[+\-.]?[0-9]")
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|(.))", re.DOTALL)
_ESCAPED = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_SURROGATE = re.compile("[\ud800-\udfff]")
# EDN integers are 64-bit; bounding them here also keeps float(value) finite later.
_INT_LIMIT = 2**63


def read(text: str, source: str) -> list[Form]:
    """Every top-level form of ``text``; ``source`` names the text in locations."""
    with paused_gc():
        return _read(text, source)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a big tree.

    Reading a 2 MB file allocates some 600,000 objects, and the collections they trigger
    as they arrive double the time taken. Forms and nodes never form cycles, so there is
    nothing for the collector to find; it runs again as soon as the block ends.

    It would start with a collection of every object made in the block (all young, and
    far past the threshold), which finds nothing and costs half as much as the reading.
    So the block ends by moving them, unexamined, to the oldest generation (freezing and
    unfreezing does that), as a collection would have moved them; they are examined at
    the next full collection. Not when something keeps objects frozen: unfreezing would
    release those.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()


# A frozen dataclass's generated __init__ sets each field through object.__setattr__,
# which at 300,000 tokens a file costs more than the scanning. These slot descriptors
# set the very same slots directly: object.__new__ then these is what __init__ does
# (tests check the results are equal to constructed ones).
_new = object.__new__
_set_source, _set_line, _set_column = (
    Location.__dict__[field].__set__ for field in ("source", "line", "column")
)
_set_symbol, _set_symbol_at = (SymbolForm.__dict__[f].__set__ for f in ("name", "location"))
_set_string, _set_string_at = (StringForm.__dict__[f].__set__ for f in ("value", "location"))
_set_list, _set_list_at = (ListForm.__dict__[f].__set__ for f in ("items", "location"))
_set_vector, _set_vector_at = (VectorForm.__dict__[f].__set__ for f in ("items", "location"))


def _read(text: str, source: str) -> list[Form]:  # noqa: PLR0915 (one hot loop, kept flat)
    top: list[Form] = []
    items = top
    # One frame per open bracket: the enclosing items, the opener's group and location.
    stack: list[tuple[list[Form], int, Location]] = []
    line = 1
    # A byte-order mark is not a column anyone can see: skip it, count from after it.
    pos = line_start = 1 if text.startswith("\ufeff") else 0
    # The offset of the next newline not yet counted (the length of the text past the
    # last one): most lexemes start before it, and one comparison says so.
    length = len(text)
    newline = text.find("\n")
    if newline < 0:
        newline = length
    for match in _TOKEN.finditer(text, pos):
        kind = match.lastindex or 0  # never None: every alternative is a group
        start, end = match.span(kind)
        if start > newline:
            # Newlines between the last lexeme and this one (inside whitespace, comments
            # or a multi-line string): each character is counted once overall.
            line += text.count("\n", newline, start)
            line_start = text.rfind("\n", newline, start) + 1
            newline = text.find("\n", start)
            if newline < 0:
                newline = length
        if kind >= _SYMBOL:
            location = _new(Location)
            _set_source(location, source)
            _set_line(location, line)
            _set_column(location, start - line_start + 1)
            if kind == _SYMBOL:
                lexeme = text[start:end]
                if lexeme == "nil":
                    items.append(NilForm(location))
                elif lexeme == "true" or lexeme == "false":  # noqa: PLR1714 (faster than `in`)
                    items.append(BoolForm(lexeme == "true", location))
                else:
                    form: Form = _new(SymbolForm)
                    _set_symbol(form, lexeme)
                    _set_symbol_at(form, location)
                    items.append(form)
            elif kind == _STRING:
                body = text[start + 1 : end - 1]
                if "\\" in body:
                    body = _unescape(body, text, start + 1, location)
                form = _new(StringForm)
                _set_string(form, body)
                _set_string_at(form, location)
                items.append(form)
            elif kind == _INT:
                items.append(_int(text[start:end], location))
            elif kind == _FLOAT:
                items.append(_float(text[start:end], location))
            elif kind == _KEYWORD:
                items.append(KeywordForm(text[start + 1 : end], location))
            elif kind == _END_OF_TEXT:
                break
            else:
                raise _bad_token(text[start:end], location)
        elif kind >= _CLOSE_LIST:
            # Closers are a third of all lexemes and need no location unless they are wrong.
            if not stack:
                raise _error(
                    f"unexpected '{_BRACKETS[kind]}': there is no open bracket to close",
                    Location(source, line, start - line_start + 1),
                )
            parent, opened, opened_at = stack.pop()
            if kind - _CLOSES != opened:
                raise _error(
                    f"unexpected '{_BRACKETS[kind]}', expected '{_BRACKETS[opened + _CLOSES]}' "
                    f"to close the '{_BRACKETS[opened]}' at {opened_at}",
                    Location(source, line, start - line_start + 1),
                )
            if kind == _CLOSE_LIST:
                form = _new(ListForm)
                _set_list(form, tuple(items))
                _set_list_at(form, opened_at)
            elif kind == _CLOSE_VECTOR:
                form = _new(VectorForm)
                _set_vector(form, tuple(items))
                _set_vector_at(form, opened_at)
            else:
                form = _map(items, opened_at)
            parent.append(form)
            items = parent
        else:
            location = _new(Location)
            _set_source(location, source)
            _set_line(location, line)
            _set_column(location, start - line_start + 1)
            stack.append((items, kind, location))
            items = []
    if stack:
        raise _unclosed(stack)
    return top


def to_data(form: Form) -> object:
    """The plain Python value of a data form: strings, numbers, booleans and nil as
    themselves, keywords as their names, lists and vectors as tuples, maps as dicts keyed
    by keyword names or strings. Symbols are code, not data. Nests without recursion."""
    # A collection is popped twice: first to push its items, then (with its keys, empty
    # for a list or vector) to assemble their values.
    work: list[tuple[Form, list[str] | None]] = [(form, None)]
    values: list[object] = []
    while work:
        current, keys = work.pop()
        if isinstance(current, MapForm | VectorForm | ListForm):
            is_map = isinstance(current, MapForm)
            items = [v for _, v in current.pairs] if isinstance(current, MapForm) else current.items
            if keys is None:
                work.append((current, _keys(current) if isinstance(current, MapForm) else []))
                work.extend((item, None) for item in reversed(items))
                continue
            split = len(values) - len(items)
            done = values[split:]
            values[split:] = [dict(zip(keys, done, strict=True)) if is_map else tuple(done)]
        elif isinstance(current, StringForm | NumberForm | BoolForm):
            values.append(current.value)
        elif isinstance(current, KeywordForm | NilForm):
            values.append(current.name if isinstance(current, KeywordForm) else None)
        else:
            raise _error(f"expected data, got {describe(current)}", current.location)
    return values[0]


def _keys(form: MapForm) -> list[str]:
    names: dict[str, None] = {}  # ordered, and a set for the duplicate check
    for key, _ in form.pairs:
        if not isinstance(key, KeywordForm | StringForm):
            raise _error(f"map keys must be keywords or strings, got {describe(key)}", key.location)
        name = key.name if isinstance(key, KeywordForm) else key.value
        if name in names:
            raise _error(f"duplicate map key {clip(name)!r}", key.location)
        names[name] = None
    return list(names)


def describe(form: Form) -> str:
    """What a form is, in words, for error messages."""
    if isinstance(form, ListForm):
        head = form.items[0] if form.items else None
        if isinstance(head, SymbolForm):
            return f"({clip(head.name)} ...)"
        return "a list" if form.items else "an empty list ()"
    if isinstance(form, SymbolForm | KeywordForm):
        name = clip(form.name)
        return f"the symbol '{name}'" if isinstance(form, SymbolForm) else f":{name}"
    if isinstance(form, StringForm | NumberForm | BoolForm):
        return repr(clip(form.value)) if isinstance(form, StringForm) else str(form.value).lower()
    if isinstance(form, NilForm):
        return "nil"
    return "a vector" if isinstance(form, VectorForm) else "a map"


def clip(text: str, most: int = 40) -> str:
    """``text`` cut short for an error message: messages should not quote a megabyte."""
    return text if len(text) <= most else text[: most - 3] + "..."


def _next_newline(text: str, start: int) -> int:
    """Offset of the next newline at or after ``start``, or the length of the text."""
    found = text.find("\n", start)
    return len(text) if found < 0 else found


def _int(lexeme: str, location: Location) -> NumberForm:
    # int() refuses over 4,300 digits with a ValueError: check the length first.
    if len(lexeme) > 20 or not -_INT_LIMIT <= int(lexeme) < _INT_LIMIT:
        raise _error(f"invalid number {clip(lexeme)}: integers must fit in 64 bits", location)
    return NumberForm(int(lexeme), location)


def _float(lexeme: str, location: Location) -> NumberForm:
    number = float(lexeme)
    if math.isinf(number):
        raise _error(f"invalid number {clip(lexeme)}: too large for a float", location)
    return NumberForm(number, location)


def _map(items: list[Form], location: Location) -> MapForm:
    if len(items) % 2:
        raise _error(
            f"map needs an even number of forms (key value pairs), got {len(items)}", location
        )
    return MapForm(tuple(zip(items[0::2], items[1::2], strict=True)), location)


def _unescape(body: str, text: str, offset: int, location: Location) -> str:
    """The string value of ``body``; ``offset`` is where ``body`` starts in ``text``."""

    def replace(escape: re.Match[str]) -> str:
        hex_digits, char = escape.groups()
        if hex_digits is not None:
            return chr(int(hex_digits, 16))
        if char in _ESCAPED:
            return _ESCAPED[char]
        expected = (
            "4 hex digits after \\u" if char == "u" else 'one of \\" \\\\ \\n \\t \\r \\b \\f'
        )
        where = _location_of(text, offset + escape.start(), location.source)
        raise _error(f"invalid escape \\{char} in string: expected {expected}", where)

    value = _ESCAPE.sub(replace, body)
    if _SURROGATE.search(value):
        # \uXXXX pairs spell characters outside the BMP as UTF-16 surrogates: join them.
        try:
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
        except UnicodeDecodeError:
            raise _error(
                "invalid escape in string: a \\u surrogate without its pair", location
            ) from None
    return value


def _location_of(text: str, offset: int, source: str) -> Location:
    """Line and column of ``offset`` by counting: for errors only, never per lexeme."""
    line = text.count("\n", 0, offset) + 1
    return Location(source, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def _bad_token(lexeme: str, location: Location) -> StrategyError:
    lexeme = clip(lexeme)
    if lexeme == '"':
        return _error("unterminated string: expected a closing '\"'", location)
    if _LOOKS_NUMERIC.match(lexeme):
        return _error(
            f"invalid number {lexeme!r}: expected digits with an optional fraction and "
            "exponent, without leading zeros (like 10, -2.5, 1e-3)",
            location,
        )
    if lexeme.startswith(":"):
        return _error(f"invalid keyword {lexeme!r}: expected a colon and a name", location)
    return _error(
        f"unexpected {lexeme!r}: expected a list, vector, map, string, number, keyword or symbol",
        location,
    )


def _unclosed(stack: list[tuple[list[Form], int, Location]]) -> StrategyError:
    counts = dict.fromkeys((_LIST, _VECTOR, _MAP), 0)
    for _, opened, _ in stack:
        counts[opened] += 1
    unclosed = " and ".join(
        f"{n} unclosed '{_BRACKETS[opened]}'" for opened, n in counts.items() if n
    )
    _, innermost, opened_at = stack[-1]
    return _error(
        f"unexpected end of input: {unclosed}; expected '{_BRACKETS[innermost + _CLOSES]}' "
        f"to close the '{_BRACKETS[innermost]}' opened here",
        opened_at,
    )


def _error(message: str, location: Location) -> StrategyError:
    return StrategyError(message, location=str(location))
