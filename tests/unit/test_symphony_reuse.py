"""A symphony file read again unchanged is not parsed again: the cold-start check and
every run of a warm Lambda container share one parse (a Symphony is immutable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alchemiser.adapters.files import symphonies
from alchemiser.adapters.files.symphonies import builtin_symphony, read_symphony_file

TEXT = '(defsymphony "two" {} (weight-equal [(asset "SPY") (asset "TLT")]))\n'


def test_the_same_text_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    symphonies.parse_document.cache_clear()
    calls: list[str] = []
    real = symphonies.parse_symphony

    def counting(text: str, source: str) -> object:
        calls.append(source)
        return real(text, source)

    monkeypatch.setattr(symphonies, "parse_symphony", counting)
    path = tmp_path / "two.clj"
    path.write_text(TEXT)
    first = read_symphony_file(path)
    assert read_symphony_file(path) is first
    assert len(calls) == 1
    # An edited file is parsed again.
    path.write_text(TEXT.replace("TLT", "IEF"))
    edited = read_symphony_file(path)
    assert edited is not first
    assert len(calls) == 2
    assert builtin_symphony("tecl") is builtin_symphony("tecl")
    assert len(calls) == 3
