"""The edition file (`edition.json`): the editor's contract.

Strict keys: a misspelt one is an error naming it, never a silently dropped
summary. Files are written to a temporary name and renamed when complete,
so an editor's file is never left half-written or replaced by a failed run.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from digest.errors import EditionError
from digest.model import Edition, EditionArticle, EditionSection, KeyPoint

FORMAT_VERSION = 1
EDITION_KEYS = ("format", "id", "title", "number", "created", "subject", "note", "sections")
SECTION_KEYS = ("key", "title", "articles")
ARTICLE_KEYS = (
    "id",
    "title",
    "url",
    "standfirst",
    "source",
    "published",
    "summary",
    "key_points",
    "rank",
)
KEY_POINT_KEYS = ("heading", "text", "bullets")


def to_json(edition: Edition) -> str:
    data = {"format": FORMAT_VERSION, **asdict(edition)}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise EditionError(f"cannot write {path} ({e.strerror}); check the --out folder") from e


def save_edition(edition: Edition, path: Path) -> None:
    write_atomically(path, to_json(edition))


def load_edition(path: Path) -> Edition:
    """Read an edition file back, with errors that point at the bad field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise EditionError(f"edition file {path} does not exist; run 'digest build' first") from e
    except OSError as e:
        raise EditionError(f"cannot read the edition file {path} ({e.strerror})") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EditionError(f"{path} is not valid JSON: {e}; fix the edit or rebuild") from e
    return from_json(data, str(path))


def from_json(data: Any, where: str) -> Edition:
    try:
        _check_keys(data, EDITION_KEYS, where, "the edition")
        return Edition(
            id=str(data["id"]),
            title=str(data["title"]),
            number=int(data["number"]),
            created=str(data["created"]),
            sections=tuple(
                _section(s, where, f"sections[{i}]") for i, s in enumerate(_list(data["sections"]))
            ),
            subject=str(data.get("subject") or ""),
            note=str(data.get("note") or ""),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise EditionError(
            f"{where}: missing or invalid field {e}; compare with a built edition"
        ) from e


def _check_keys(data: Any, known: tuple[str, ...], where: str, place: str) -> None:
    if not isinstance(data, dict):
        raise EditionError(f"{where}: {place} must be a JSON object; compare with a built edition")
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise EditionError(f"{where}: unknown key {key!r} in {place}; {hint}")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _section(data: Any, where: str, place: str) -> EditionSection:
    _check_keys(data, SECTION_KEYS, where, place)
    return EditionSection(
        key=str(data["key"]),
        title=str(data["title"]),
        articles=tuple(
            _article(a, where, f"{place}.articles[{i}]")
            for i, a in enumerate(_list(data["articles"]))
        ),
    )


def _article(data: Any, where: str, place: str) -> EditionArticle:
    _check_keys(data, ARTICLE_KEYS, where, place)
    return EditionArticle(
        id=str(data["id"]),
        title=str(data["title"]),
        url=str(data["url"]),
        standfirst=str(data.get("standfirst", "")),
        source=str(data.get("source", "")),
        published=str(data.get("published", "")),
        summary=tuple(str(s) for s in _list(data.get("summary", []))),
        key_points=tuple(
            _key_point(k, where, f"{place}.key_points[{i}]")
            for i, k in enumerate(_list(data.get("key_points", [])))
        ),
        rank=float(data.get("rank", 0.0)),
    )


def _key_point(data: Any, where: str, place: str) -> KeyPoint:
    _check_keys(data, KEY_POINT_KEYS, where, place)
    bullets = tuple(str(b) for b in _list(data.get("bullets", [])))
    return KeyPoint(str(data["heading"]), str(data.get("text", "")), bullets)
