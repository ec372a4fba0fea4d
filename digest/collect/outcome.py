"""What reading a source yields: entries with their GUIDs, problems, and how
the source itself fared (for its health record and conditional GET).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from digest.config import SourceConfig
from digest.model import Article


@dataclass(frozen=True)
class Problem:
    """Something a source could not deliver: where, and what went wrong."""

    source: str
    message: str


@dataclass(frozen=True)
class Entry:
    """One collected item and the GUID its feed gave it ('' when none)."""

    article: Article
    guid: str = ""


@dataclass(frozen=True)
class SourceResult:
    """One source read once. `error` set means the source failed as a whole;
    `validators` (ETag, Last-Modified) is None when nothing new was fetched."""

    source: SourceConfig
    entries: tuple[Entry, ...] = ()
    problems: tuple[Problem, ...] = ()
    error: str = ""
    validators: tuple[str, str] | None = None
    not_modified: bool = False


def in_language(result: SourceResult) -> SourceResult:
    """The result with the source's `language` option on each of its articles."""
    code = result.source.language
    if not code or not result.entries:
        return result
    entries = tuple(replace(e, article=replace(e.article, language=code)) for e in result.entries)
    return replace(result, entries=entries)
