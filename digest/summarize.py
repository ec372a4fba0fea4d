"""Summaries: a first, deliberately simple summariser.

The lead sentence of each article section; the summaries issue replaces it
with an extractive ranker behind the same protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from digest.model import Article, KeyPoint, Summary

SENTENCE_BREAK = re.compile(r"(?<=[.!?…])[\"”’)]*\s+(?=[\"“‘(]?[A-Z0-9])")


@dataclass(frozen=True)
class SummaryOptions:
    sentences: int = 2


class Summarizer(Protocol):
    def summarize(self, article: Article) -> Summary: ...


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_BREAK.split(text) if s.strip()]


class LeadSummarizer:
    """The first sentence of each section."""

    def __init__(self, options: SummaryOptions) -> None:
        self.options = options

    def summarize(self, article: Article) -> Summary:
        leads: list[str] = []
        points: list[KeyPoint] = []
        for section in article.sections:
            first = next((split_sentences(p)[0] for p in section.paragraphs if p.strip()), "")
            if first:
                leads.append(first)
            if section.heading:
                points.append(KeyPoint(section.heading, first, () if first else section.bullets))
        return Summary(tuple(leads[: self.options.sentences]), tuple(points))


def make_summarizer(options: SummaryOptions) -> Summarizer:
    return LeadSummarizer(options)


def summarize(article: Article, options: SummaryOptions | None = None) -> Summary:
    return make_summarizer(options or SummaryOptions()).summarize(article)
