"""Summarize: a few sentences and one key point per headed section for each
article. The extractive summariser is the default and needs no network; an
optional LLM summariser can stand in front of it.
"""

from __future__ import annotations

from digest.config import SummaryOptions
from digest.summarize.extractive import ExtractiveSummarizer
from digest.summarize.rows import article_from_text, summarize_jsonl
from digest.summarize.sentences import split_sentences
from digest.summarize.summarizer import Summarizer, make_summarizer, summarize
from digest.summarize.words import fit_edition_budget, summary_words

__all__ = [
    "ExtractiveSummarizer",
    "Summarizer",
    "SummaryOptions",
    "article_from_text",
    "fit_edition_budget",
    "make_summarizer",
    "split_sentences",
    "summarize",
    "summarize_jsonl",
    "summary_words",
]
