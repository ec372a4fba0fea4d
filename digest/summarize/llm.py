"""Summaries written by an LLM behind an OpenAI-compatible chat completions API.

Optional: it needs httpx (the ``llm`` extra), imported only when used. Answers
are cached in SQLite by (content hash, model, prompt version). On any failure
or an empty answer the extractive summary is used and the log says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from digest.config import SummaryOptions
from digest.errors import SummaryError
from digest.model import Article, Summary
from digest.summarize.extractive import ExtractiveSummarizer
from digest.summarize.sentences import split_sentences

log = logging.getLogger(__name__)

# Bump when the prompt changes, so that cached answers to the old one are not reused.
PROMPT_VERSION = "1"
SYSTEM_PROMPT = (
    "You summarise news articles for an email digest. Answer with at most {sentences} "
    "complete sentences, at most {words} words in all, one sentence per line, no "
    "preamble. Keep names, numbers and quotations exactly as the article gives them."
)


class LLMAnswerError(SummaryError):
    """The API could not be reached or gave an answer we cannot read."""


def _import_httpx() -> ModuleType:
    try:
        import httpx
    except ImportError as e:
        raise SummaryError(
            "the LLM summariser needs httpx: install it with pip install 'digest[llm]', "
            "or unset DIGEST_LLM_BASE_URL to use the extractive summariser"
        ) from e
    return httpx


def content_hash(article: Article) -> str:
    """What the LLM reads of an article, hashed: same text, same answer."""
    text = "\n".join((article.title, article.standfirst, article.text))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AnswerCache:
    """Summaries already written, in one SQLite file (in memory when no path)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path) if path else ":memory:")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS llm_summaries (content_hash TEXT, model TEXT,"
            " prompt_version TEXT, sentences TEXT NOT NULL,"
            " PRIMARY KEY (content_hash, model, prompt_version))"
        )

    def get(self, key: tuple[str, str, str]) -> tuple[str, ...] | None:
        row = self._db.execute(
            "SELECT sentences FROM llm_summaries"
            " WHERE content_hash = ? AND model = ? AND prompt_version = ?",
            key,
        ).fetchone()
        return tuple(json.loads(row[0])) if row else None

    def put(self, key: tuple[str, str, str], sentences: tuple[str, ...]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO llm_summaries VALUES (?, ?, ?, ?)",
                (*key, json.dumps(list(sentences))),
            )

    def close(self) -> None:
        self._db.close()


class LLMSummarizer:
    """Asks the API for the summary sentences; key points stay extractive."""

    def __init__(
        self,
        options: SummaryOptions,
        fallback: ExtractiveSummarizer,
        cache: AnswerCache | None = None,
    ) -> None:
        if not (options.llm_base_url and options.llm_model):
            raise SummaryError("the LLM summariser needs DIGEST_LLM_BASE_URL and DIGEST_LLM_MODEL")
        self._httpx = _import_httpx()
        self.options = options
        self.model = options.llm_model
        self.fallback = fallback
        self.cache = cache or AnswerCache(options.llm_cache_path)
        # The budget is part of the prompt, so it is part of the prompt's version.
        self.prompt_version = f"{PROMPT_VERSION}:{options.sentences}:{options.article_words}"

    def summarize(self, article: Article) -> Summary:
        extractive = self.fallback.summarize(article)
        key = (content_hash(article), self.model, self.prompt_version)
        cached = self.cache.get(key)
        if cached is not None:
            return replace(extractive, sentences=cached)
        where = article.url or article.id
        try:
            sentences = self._ask(article)
        except LLMAnswerError as e:
            log.warning("LLM summary of %s failed (%s); using the extractive summary", where, e)
            return extractive
        if not sentences:
            log.warning("LLM gave an empty summary of %s; using the extractive summary", where)
            return extractive
        self.cache.put(key, sentences)
        return replace(extractive, sentences=sentences)

    def _ask(self, article: Article) -> tuple[str, ...]:
        httpx = self._httpx
        try:
            response = httpx.post(
                f"{str(self.options.llm_base_url).rstrip('/')}/chat/completions",
                json=self._request(article),
                headers=self._headers(),
                timeout=self.options.llm_timeout,
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
        except httpx.TimeoutException as e:
            raise LLMAnswerError(f"no answer within {self.options.llm_timeout:g} s") from e
        except httpx.HTTPStatusError as e:
            raise LLMAnswerError(f"HTTP {e.response.status_code}") from e
        except httpx.HTTPError as e:
            raise LLMAnswerError(f"{type(e).__name__}: {e}") from e
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMAnswerError(f"unreadable answer ({type(e).__name__})") from e
        return self._fit(content if isinstance(content, str) else "")

    def _request(self, article: Article) -> dict[str, Any]:
        system = SYSTEM_PROMPT.format(
            sentences=self.options.sentences, words=self.options.article_words or "any number of"
        )
        user = "\n\n".join(t for t in (article.title, article.standfirst, article.text) if t)
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        }

    def _headers(self) -> dict[str, str]:
        key = self.options.llm_api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _fit(self, content: str) -> tuple[str, ...]:
        # Models ignore limits now and then: keep whole sentences within the budget.
        kept: list[str] = []
        words = 0
        budget = self.options.article_words
        for sentence in split_sentences(content):
            length = len(sentence.split())
            if len(kept) == self.options.sentences or (budget and words + length > budget):
                break
            kept.append(sentence)
            words += length
        return tuple(kept)
