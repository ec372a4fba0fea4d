"""Collecting articles from every configured source.

Each kind of source lives in its own module; this one dispatches on the
source string and records what is new in the store. A failing source is
reported and never stops the others.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from digest import store
from digest.config import Settings
from digest.errors import SourceError
from digest.model import Article, article_to_dict
from digest.sources import files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """Something a source could not deliver: where, and what went wrong."""

    source: str
    message: str


@dataclass(frozen=True)
class Collected:
    """What one collection run produced."""

    articles: tuple[tuple[str, Article], ...]  # (section key, article), new only
    problems: tuple[Problem, ...]


def read_source(source: str) -> tuple[list[Article], list[Problem]]:
    """Every article a source holds right now, and what went wrong reading it."""
    if "://" in source and not source.startswith("file://"):
        problem = Problem(source, "URL sources are not supported yet; use a local file or folder")
        return [], [problem]
    path = Path(source.removeprefix("file://"))
    try:
        paths = files.article_paths(path)
    except SourceError as e:
        return [], [Problem(source, str(e))]
    articles: list[Article] = []
    problems: list[Problem] = []
    for item in paths:
        try:
            articles.append(files.read_article(item))
        except SourceError as e:
            log.warning("skipped %s", e)
            problems.append(Problem(str(item), str(e)))
    return articles, problems


def collect(settings: Settings, db: sqlite3.Connection) -> Collected:
    """Read every configured source and store the articles not seen before."""
    new: list[tuple[str, Article]] = []
    problems: list[Problem] = []
    for section in settings.sections:
        for source in section.sources:
            articles, trouble = read_source(source)
            problems.extend(trouble)
            for article in articles:
                body = json.dumps(article_to_dict(article), ensure_ascii=False)
                if store.add_article(db, article.id, section.key, article.url, article.title, body):
                    new.append((section.key, article))
    return Collected(tuple(new), tuple(problems))
