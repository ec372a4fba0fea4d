"""The DKIM body hash (RFC 6376 3.4.3, 3.4.4, 3.7) computed piece by piece:
a skeleton's fixed pieces are canonicalised once per edition variant, and
per message only the personal pieces between them are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
WSP_RUN = re.compile(rb"[ \t]+")
WSP_AT_LINE_END = re.compile(rb"[ \t]+\r\n")


def canonical_lines(lines: bytes, relaxed: bool) -> bytes:
    """Whole lines (`lines` ends in CRLF, or is empty) in canonical form.

    Neither rule can reach past a CRLF, so whole lines canonicalise the same
    alone as inside any body: that is what lets the pieces be done apart."""
    if not relaxed or (b"\t" not in lines and b"  " not in lines and b" \r\n" not in lines):
        return lines  # nothing relaxed would change (a personal value, mostly)
    return WSP_RUN.sub(b" ", WSP_AT_LINE_END.sub(CRLF, lines))


def line_end(data: bytes) -> int:
    """Where the last whole line in `data` ends; 0 when none does."""
    at = data.rfind(CRLF)
    return 0 if at < 0 else at + 2


def split_blank_tail(lines: bytes) -> tuple[bytes, int]:
    """Canonical lines, less the empty lines at their end, and how many."""
    end = len(lines)
    while end >= 4 and lines[end - 4 : end] == b"\r\n\r\n":
        end -= 2
    if end == 2 and lines[:2] == CRLF:
        end = 0
    return lines[:end], (len(lines) - end) // 2


@dataclass(frozen=True)
class FixedPiece:
    """A fixed piece of body, canonicalised as if it starts a line: its lines
    less any empty ones at the end, those empty lines, its unfinished line."""

    raw: bytes
    lines: bytes
    blank: int
    partial: bytes


class BodyHash:
    """SHA-256 over a body's canonical form, fed in pieces cut anywhere.

    Empty lines are held back until a non-empty one follows (the body's
    trailing empty lines are ignored), and an unfinished line until it ends.
    """

    __slots__ = ("blank", "partial", "relaxed", "sha", "started")

    def __init__(self, relaxed: bool) -> None:
        self.relaxed = relaxed
        self.sha = hashlib.sha256()
        self.partial = b""  # the line begun and not yet ended
        self.blank = 0  # empty lines held back
        self.started = False  # a non-empty line has been hashed

    def copy(self) -> BodyHash:
        twin = BodyHash(self.relaxed)
        twin.sha, twin.partial = self.sha.copy(), self.partial
        twin.blank, twin.started = self.blank, self.started
        return twin

    def update(self, data: bytes) -> None:
        data = self.partial + data
        end = line_end(data)
        self.partial = data[end:]
        if end:
            self._lines(*split_blank_tail(canonical_lines(data[:end], self.relaxed)))

    def add(self, piece: FixedPiece) -> None:
        """A prepared piece: its canonical lines as they are when it starts a
        line (a slot's value ends in CRLF), else through `update`."""
        if self.partial:
            self.update(piece.raw)
            return
        self._lines(piece.lines, piece.blank)
        self.partial = piece.partial

    def _lines(self, lines: bytes, blank: int) -> None:
        if lines:
            if self.blank:
                self.sha.update(CRLF * self.blank)
            self.sha.update(lines)
            self.started, self.blank = True, blank
        else:
            self.blank += blank

    def digest(self) -> bytes:
        """The hash of the body fed so far, as if it ended here."""
        sha = self.sha.copy()
        if self.partial:
            # A last line without CRLF gets one; its whitespace is compressed,
            # not stripped, as dkimpy does (our bodies always end in CRLF).
            if self.blank:
                sha.update(CRLF * self.blank)
            tail = WSP_RUN.sub(b" ", self.partial) if self.relaxed else self.partial
            sha.update(tail + CRLF)
        elif not self.started and not self.relaxed:
            sha.update(CRLF)  # simple: an empty body is one CRLF; relaxed: nothing
        return sha.digest()


def fixed_piece(raw: bytes, relaxed: bool) -> FixedPiece:
    end = line_end(raw)
    lines, blank = split_blank_tail(canonical_lines(raw[:end], relaxed))
    return FixedPiece(raw, lines, blank, raw[end:])


@dataclass(frozen=True)
class BodyPlan:
    """A body of fixed pieces with a slot between each two, for one
    canonicalisation: the hash state after the first piece, and the rest
    prepared. `start` is never fed; each message works on a copy."""

    start: BodyHash
    pieces: tuple[FixedPiece, ...]

    def digest(self, values: Sequence[bytes]) -> bytes:
        """The body hash with `values` in the slots (one per slot)."""
        state = self.start.copy()
        for value, piece in zip(values, self.pieces, strict=True):
            state.update(value)
            state.add(piece)
        return state.digest()


def body_plan(fixed: Sequence[bytes], relaxed: bool) -> BodyPlan:
    start = BodyHash(relaxed)
    start.update(fixed[0])
    return BodyPlan(start, tuple(fixed_piece(raw, relaxed) for raw in fixed[1:]))


@dataclass(frozen=True)
class BodyPlans:
    """A skeleton's body prepared for both canonicalisations."""

    simple: BodyPlan
    relaxed: BodyPlan

    def plan(self, relaxed: bool) -> BodyPlan:
        return self.relaxed if relaxed else self.simple


def body_plans(fixed: Sequence[bytes]) -> BodyPlans:
    return BodyPlans(body_plan(fixed, relaxed=False), body_plan(fixed, relaxed=True))


def whole_body_hash(body: bytes, relaxed: bool) -> bytes:
    """The body hash of a whole body in one piece."""
    state = BodyHash(relaxed)
    state.update(body)
    return state.digest()
