"""Progress of a long command on stderr: a bar with an ETA (tqdm) on a terminal, plain
lines otherwise (a log or a pipe gets one line a step, not carriage returns)."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Never, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm


class Progress:
    """Steps done out of ``total`` (which may grow); a context manager."""

    def __init__(
        self, total: int, label: str, stream: TextIO, *, unit: str = "request", every: int = 1
    ) -> None:
        """``every``: without a terminal, print one line per ``every`` steps (and the last)."""
        self._label = label
        self._stream = stream
        self._done = 0
        self._every = max(every, 1)
        self.total = total
        self._bar: tqdm[Never] | None = None
        if stream.isatty():
            from tqdm import tqdm  # noqa: PLC0415 (only a terminal draws the bar)

            self._bar = tqdm(total=total, desc=label, file=stream, unit=unit, leave=False)

    def grow(self, steps: int) -> None:
        """``steps`` more to do than first thought."""
        self.total += steps
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def advance(self, note: str) -> None:
        """One step done; ``note`` says which."""
        self._done += 1
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(1)
        elif self._done % self._every == 0 or self._done == self.total:
            print(f"{self._label}: {self._done}/{self.total}: {note}", file=self._stream)

    def write(self, line: str) -> None:
        """A message that does not garble the bar."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
