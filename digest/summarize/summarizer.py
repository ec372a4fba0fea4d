"""The summariser a digest uses: extractive, or an LLM in front of it."""

from __future__ import annotations

from typing import Protocol

from digest.config import SummaryOptions
from digest.model import Article, Summary
from digest.summarize.extractive import ExtractiveSummarizer


class Summarizer(Protocol):
    """Anything that can summarise an article."""

    def summarize(self, article: Article) -> Summary: ...


def make_summarizer(options: SummaryOptions | None = None) -> Summarizer:
    """The extractive summariser, behind the LLM adapter if one is configured."""
    options = options or SummaryOptions()
    extractive = ExtractiveSummarizer(options)
    if options.llm_base_url and options.llm_model:
        from digest.summarize.llm import LLMSummarizer

        return LLMSummarizer(options, fallback=extractive)
    return extractive


def summarize(article: Article, options: SummaryOptions | None = None) -> Summary:
    """Summarise one article with the summariser the options describe."""
    return make_summarizer(options).summarize(article)
