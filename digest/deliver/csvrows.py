"""The subscriber list as CSV rows: each row bounded in length and in lines,
a bad one (unreadable, oversized, an unclosed quote, a NUL) reported by its
first line while the rows after it are still read; formula cells guarded.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from digest.errors import SubscriberError

# A row is at most this long, and spans at most this many lines (a quoted
# cell may hold line breaks): past either it is a bad row, not the rest of
# the file swallowed by one unclosed quote. csv's own field limit is 131,072.
MAX_ROW_CHARS = 65_536
MAX_ROW_LINES = 100
# Cells a spreadsheet would run as a formula are written with a leading
# apostrophe (OWASP's rule against CSV injection); reading takes it off.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RowError:
    """A row that could not be used, and why."""

    path: str
    line: int
    message: str
    duplicate_of: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


Record = tuple[int, list[str]]  # (first line, cells)


def open_list(path: Path) -> TextIO:
    try:
        # A stray non-UTF-8 byte must cost its row, not the whole list: keep
        # the bytes as surrogates and let the row's check report it.
        return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise SubscriberError(
            f"cannot read the subscriber list {path} ({e.strerror}); check DIGEST_SUBSCRIBERS"
        ) from e


def records(handle: TextIO, path: Path) -> Iterator[Record | RowError]:
    """Each row's first line and cells, or a RowError for a row that cannot
    be read; after a bad row, reading goes on from the line after its first."""
    lines = _Lines(handle)
    reader = csv.reader(lines)
    while True:
        lines.start()
        try:
            number, line = lines.take()
        except StopIteration:
            return
        if line is not None and '"' not in line:
            # Without a quote, csv would split at each comma and nothing else:
            # split here, at a third of the cost for the rows of a long list.
            cells = line.rstrip("\r\n").split(",")
            if cells != [""]:
                yield number, _unguarded(cells) if "'" in line else cells
            continue
        lines.again.appendleft((number, line))
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (_BadRow, csv.Error) as e:
            yield RowError(str(path), lines.first, lines.diagnose(e))
            lines.rewind()
            continue
        if cells:
            yield lines.first, _unguarded(cells)


def _unguarded(cells: list[str]) -> list[str]:
    return [c[1:] if c.startswith("'") and _formula(c) else c for c in cells]


def guard(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe,
    and so does one that only looks guarded ("'=x" is written "''=x"), so
    that reading takes one off and gives back what was written."""
    return "'" + value if _formula(value) else value


def _formula(value: str) -> bool:
    """A formula start after any leading apostrophes."""
    return value.lstrip("'").startswith(FORMULA_START)


class _BadRow(Exception):
    """The row being read cannot be a good one (`_Lines.diagnose` says why)."""


class _Lines:
    """Physical lines handed to csv.reader a row at a time, so that a row is
    bounded and a bad one costs only its first line: the lines it swallowed
    are handed out again, as rows of their own."""

    def __init__(self, handle: TextIO) -> None:
        self.handle = handle
        self.number = 0  # physical lines read from the file
        self.again: deque[tuple[int, str | None]] = deque()
        self.row: list[tuple[int, str | None]] = []  # None: a line over the cap
        self.chars = 0

    @property
    def first(self) -> int:
        return self.row[0][0] if self.row else self.number + 1

    def start(self) -> None:
        self.row, self.chars = [], 0

    def __iter__(self) -> _Lines:
        return self

    def take(self) -> tuple[int, str | None]:
        """The next physical line as it is, with its number (None: over the cap)."""
        return self.again.popleft() if self.again else self._read()

    def __next__(self) -> str:
        if len(self.row) >= MAX_ROW_LINES:
            raise _BadRow
        number, line = self.take()
        self.row.append((number, line))
        if line is None:
            raise _BadRow
        self.chars += len(line)
        if self.chars > MAX_ROW_CHARS:
            raise _BadRow
        return line

    def _read(self) -> tuple[int, str | None]:
        line = self.handle.readline(MAX_ROW_CHARS + 1)
        if not line:
            if self.row:  # csv asks for more inside a quoted cell: it never closes
                raise _BadRow
            raise StopIteration
        self.number += 1
        if len(line) > MAX_ROW_CHARS:
            while line and not line.endswith(("\n", "\r")):  # skip the rest of it
                line = self.handle.readline(MAX_ROW_CHARS)
            return self.number, None
        return self.number, line

    def diagnose(self, error: Exception) -> str:
        if isinstance(error, csv.Error) or not self.row:
            return f"unreadable CSV ({error}); fix or remove the row"
        oversized = self.chars > MAX_ROW_CHARS or self.row[-1][1] is None
        if len(self.row) > 1 or not oversized:
            return 'a quote (") opened on this line is never closed; close it or remove it'
        return f"the row is longer than {MAX_ROW_CHARS:,} characters; shorten it"

    def rewind(self) -> None:
        self.again.extendleft(reversed(self.row[1:]))
        self.row = []
