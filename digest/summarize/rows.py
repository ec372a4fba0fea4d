"""Summaries of JSON rows `{"id", "article"}`: for evaluation and scripting."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from digest.config import SummaryOptions
from digest.errors import SummaryError
from digest.model import Article, ArticleSection
from digest.summarize.summarizer import make_summarizer


def article_from_text(article_id: str, text: str, title: str = "") -> Article:
    """An article with one untitled section holding the text's paragraphs."""
    paragraphs = tuple(line.strip() for line in text.splitlines() if line.strip())
    return Article(article_id, title, "", sections=(ArticleSection("", paragraphs),))


def summarize_jsonl(lines: Iterable[str], options: SummaryOptions) -> Iterator[dict[str, Any]]:
    """Rows ``{"id", "article"}`` in, rows ``{"id", "summary": [sentences]}`` out."""
    summarizer = make_summarizer(replace(options, key_points=False))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = _parse_row(line, number)
        article = article_from_text(str(row["id"]), str(row["article"]))
        yield {"id": row["id"], "summary": list(summarizer.summarize(article).sentences)}


def _parse_row(line: str, number: int) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise SummaryError(
            f"line {number}: not JSON ({e.msg}); expected one object per line"
        ) from e
    if not isinstance(row, dict) or "id" not in row or "article" not in row:
        raise SummaryError(f'line {number}: each row needs "id" and "article" fields')
    return row
