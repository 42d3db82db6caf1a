"""The symphony reader: every form it knows, where each starts, and every error it gives."""

from __future__ import annotations

import gc
import re

import pytest

from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import Location
from alchemiser.strategy.symphony.reader import (
    BoolForm,
    Form,
    KeywordForm,
    ListForm,
    MapForm,
    NilForm,
    NumberForm,
    StringForm,
    SymbolForm,
    VectorForm,
    describe,
    paused_gc,
    read,
    to_data,
)


def at(line: int, column: int) -> Location:
    return Location("s.clj", line, column)


def one(text: str) -> Form:
    forms = read(text, "s.clj")
    assert len(forms) == 1
    return forms[0]


def error(text: str) -> StrategyError:
    with pytest.raises(StrategyError) as caught:
        read(text, "s.clj")
    return caught.value


def test_every_form_with_its_location_equals_the_constructed_one() -> None:
    text = '(if [1 -2.5] {:window 10, "k" nil}\n  true false "s" sym)'
    assert read(text, "s.clj") == [
        ListForm(
            (
                SymbolForm("if", at(1, 2)),
                VectorForm(
                    (NumberForm(1, at(1, 6)), NumberForm(-2.5, at(1, 8))),
                    at(1, 5),
                ),
                MapForm(
                    (
                        (KeywordForm("window", at(1, 15)), NumberForm(10, at(1, 23))),
                        (StringForm("k", at(1, 27)), NilForm(at(1, 31))),
                    ),
                    at(1, 14),
                ),
                BoolForm(True, at(2, 3)),
                BoolForm(False, at(2, 8)),
                StringForm("s", at(2, 14)),
                SymbolForm("sym", at(2, 18)),
            ),
            at(1, 1),
        )
    ]


def test_fast_built_forms_behave_like_constructed_ones() -> None:
    form = one("(a)")
    assert isinstance(form, ListForm)
    assert hash(form) == hash(ListForm((SymbolForm("a", at(1, 2)),), at(1, 1)))
    assert str(form.location) == "s.clj:1:1"
    with pytest.raises(AttributeError):
        form.items = ()  # type: ignore[misc]


def test_empty_and_blank_texts_hold_no_forms() -> None:
    assert read("", "s.clj") == []
    assert read("  ,, ; only a comment\n\t", "s.clj") == []


def test_several_top_level_forms_in_order() -> None:
    assert read("a :b 3", "s.clj") == [
        SymbolForm("a", at(1, 1)),
        KeywordForm("b", at(1, 3)),
        NumberForm(3, at(1, 6)),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("-0", 0),
        ("+7", 7),
        ("42", 42),
        ("-17", -17),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("0.5", 0.5),
        ("-2.5", -2.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-1.5e+2", -150.0),
    ],
)
def test_numbers(text: str, value: float) -> None:
    form = one(text)
    assert isinstance(form, NumberForm)
    assert form.value == value
    assert type(form.value) is type(value)


@pytest.mark.parametrize(
    "text",
    ["if", "weight-equal", "select-top", ">", ">=", "<", "<=", "-", "+", "/", "a.b/c", "x?", "a1"],
)
def test_symbols(text: str) -> None:
    assert one(text) == SymbolForm(text, at(1, 1))


def test_keywords_lose_their_colon() -> None:
    assert one(":rebalance-frequency") == KeywordForm("rebalance-frequency", at(1, 1))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'""', ""),
        (r'"plain"', "plain"),
        (r'"a\"b"', 'a"b'),
        (r'"back\\slash"', "back\\slash"),
        (r'"\n\t\r\b\f"', "\n\t\r\b\f"),
        (r'"\u00e9t\u00C9"', "étÉ"),
        (r'"\uD83D\uDE00"', "\U0001f600"),
        ('"two\nlines"', "two\nlines"),
        ('"; not a comment"', "; not a comment"),
        ('"(not [a {list"', "(not [a {list"),
    ],
)
def test_strings_and_escapes(text: str, value: str) -> None:
    assert one(text) == StringForm(value, at(1, 1))


def test_comments_and_commas_are_whitespace() -> None:
    text = "; heading\n(a, b ; trailing ) ]\n,c)"
    assert one(text) == ListForm(
        (SymbolForm("a", at(2, 2)), SymbolForm("b", at(2, 5)), SymbolForm("c", at(3, 2))),
        at(2, 1),
    )


def test_lines_are_counted_through_multi_line_strings_and_crlf() -> None:
    forms = read('"a\nb\nc" x\r\n  y', "s.clj")
    assert [form.location for form in forms] == [at(1, 1), at(3, 4), at(4, 3)]


def test_tabs_count_as_one_column() -> None:
    assert one("\t\tx") == SymbolForm("x", at(1, 3))


def test_a_byte_order_mark_is_skipped_and_not_counted() -> None:
    assert one("\ufeff(a)") == ListForm((SymbolForm("a", at(1, 2)),), at(1, 1))


def test_a_string_right_after_a_symbol_is_its_own_form() -> None:
    assert read('a"b"', "s.clj") == [SymbolForm("a", at(1, 1)), StringForm("b", at(1, 2))]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ('(a "open', "1:4", "unterminated string"),
        ('"\\"', "1:1", "unterminated string"),
        ("(a ]", "1:4", "unexpected ']', expected ')' to close the '(' at s.clj:1:1"),
        ("[a}", "1:3", "unexpected '}', expected ']' to close the '[' at s.clj:1:1"),
        ("a )", "1:3", "unexpected ')': there is no open bracket to close"),
        ("{:a 1\n :b}", "1:1", "map needs an even number of forms (key value pairs), got 3"),
        ("(a\n (b\n  (c", "3:3", "unexpected end of input: 3 unclosed '('; expected ')'"),
        ("(a [b {c", "1:7", "1 unclosed '(' and 1 unclosed '[' and 1 unclosed '{'"),
        ("x 010", "1:3", "invalid number '010'"),
        ("1.2.3", "1:1", "invalid number '1.2.3'"),
        ("1/2", "1:1", "invalid number '1/2'"),
        ("12abc", "1:1", "invalid number '12abc'"),
        (".5", "1:1", "invalid number '.5'"),
        ("-1x", "1:1", "invalid number '-1x'"),
        ("99999999999999999999", "1:1", "invalid number 99999999999999999999: integers must fit"),
        ("9" * 5000, "1:1", "integers must fit in 64 bits"),
        ("1e400", "1:1", "invalid number 1e400: too large for a float"),
        ('(a "x\n  \\q")', "2:3", "invalid escape \\q in string"),
        ('"\\u12G4"', "1:2", "invalid escape \\u in string: expected 4 hex digits after \\u"),
        ('"\\uDE00"', "1:1", "a \\u surrogate without its pair"),
        (":", "1:1", "invalid keyword ':'"),
        ("::auto", "1:1", "invalid keyword '::auto'"),
        ("@deref", "1:1", "unexpected '@deref': expected a list, vector, map"),
        ("#{1 2}", "1:1", "unexpected '#'"),
        ("'quoted", "1:1", 'unexpected "\'quoted"'),
        ("caf\u00e9", "1:1", "unexpected 'café'"),
        ("a\x00b", "1:1", "unexpected 'a\\x00b'"),
    ],
)
def test_errors_say_where_and_what_was_expected(text: str, where: str, message: str) -> None:
    caught = error(text)
    assert caught.location == f"s.clj:{where}"
    assert message in caught.message
    assert str(caught).startswith(f"s.clj:{where}: ")


def test_the_first_error_in_the_text_is_the_one_reported() -> None:
    assert error('(a ]) "open').location == "s.clj:1:4"


def test_deep_nesting_neither_recurses_nor_slows_down() -> None:
    depth = 100_000
    forms = read("(" * depth + "x" + ")" * depth, "s.clj")
    # Walk down without recursion (equality and repr of forms this deep would recurse).
    form = forms[0]
    levels = 0
    while isinstance(form, ListForm):
        levels += 1
        assert form.location.column == levels
        form = form.items[0]
    assert levels == depth
    assert form == SymbolForm("x", at(1, depth + 1))


def test_deep_unclosed_nesting_reports_the_innermost_opener() -> None:
    caught = error("[" * 50_000)
    assert caught.location == "s.clj:1:50000"
    assert "50000 unclosed '['" in caught.message


def test_unterminated_string_in_a_big_text_is_found_fast() -> None:
    caught = error('(a "' + "x" * 1_000_000)
    assert caught.location == "s.clj:1:4"


def test_many_blanks_and_comments_before_the_end_are_skipped_once() -> None:
    assert read("x" + " " * 1_000_000 + ";" * 1_000_000, "s.clj") == [SymbolForm("x", at(1, 1))]


def test_the_collector_is_paused_while_reading_and_restored_after() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        read("(a)", "s.clj")
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Made:
    """A tracked object (instances of classes are), to find among the collector's."""


def test_what_a_paused_block_made_goes_to_the_oldest_generation_unexamined() -> None:
    assert gc.get_freeze_count() == 0
    with paused_gc():
        made = [_Made() for _ in range(1000)]
    young = {id(o) for o in gc.get_objects(generation=0) + gc.get_objects(generation=1)}
    assert not any(id(o) in young for o in made)
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(o) in oldest for o in made)
    assert gc.get_freeze_count() == 0  # nothing left frozen
    assert gc.isenabled()


def test_objects_kept_frozen_stay_frozen() -> None:
    kept = _Made()
    gc.freeze()
    try:
        with paused_gc():
            made = [_Made() for _ in range(100)]
        # The count may fall as frozen objects die (reference counting still frees
        # them); what must hold is that the caller's stay frozen, in no generation,
        # and nothing made meanwhile was set aside.
        tracked = {id(o) for o in gc.get_objects()}
        assert id(kept) not in tracked
        assert all(id(o) in tracked for o in made)
    finally:
        gc.unfreeze()


def test_the_collector_is_restored_after_an_error() -> None:
    error("(")
    assert gc.isenabled()


def test_locations_name_the_source() -> None:
    forms = read("x", "strategies/nuclear.clj")
    assert str(forms[0].location) == "strategies/nuclear.clj:1:1"
    caught = error("  )")
    assert re.fullmatch(r"s\.clj:1:3", caught.location or "")


def test_to_data_gives_plain_python() -> None:
    form = one('{:a :daily, "b" [1 -2.5 "x" nil true (false)], :c {}}')
    assert to_data(form) == {"a": "daily", "b": (1, -2.5, "x", None, True, (False,)), "c": {}}


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[1 sym]", "1:4", "expected data, got the symbol 'sym'"),
        ("{1 2}", "1:2", "map keys must be keywords or strings, got 1"),
        ("{[] 2}", "1:2", "map keys must be keywords or strings, got a vector"),
        ('{:a 1 "a" 2}', "1:7", "duplicate map key 'a'"),
    ],
)
def test_to_data_errors(text: str, where: str, message: str) -> None:
    with pytest.raises(StrategyError) as caught:
        to_data(one(text))
    assert caught.value.location == f"s.clj:{where}"
    assert message in caught.value.message


def test_big_maps_and_deep_data_convert_in_linear_time_without_recursion() -> None:
    keys = 50_000  # a quadratic duplicate check would take minutes
    converted = to_data(one("{" + " ".join(f":k{i} {i}" for i in range(keys)) + "}"))
    assert isinstance(converted, dict)
    assert len(converted) == keys
    value = to_data(one("[" * 20_000 + "]" * 20_000))
    depth = 0
    while value:
        assert isinstance(value, tuple)
        value, depth = value[0], depth + 1
    assert depth == 19_999


def test_messages_quote_at_most_a_few_dozen_characters_of_the_text() -> None:
    assert len(error("@" + "x" * 100_000).message) < 200
    assert len(error("1" * 100_000).message) < 200
    assert describe(one('"' + "y" * 100 + '"')) == repr("y" * 37 + "...")
    assert describe(one("(" + "z" * 100 + ")")) == "(" + "z" * 37 + "... ...)"
