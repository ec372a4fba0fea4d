"""Word budgets: what a summary costs in the email, and shortening a whole
edition's summaries to fit `edition_words`. A word costs by its length too,
so one enormous "word" cannot pass for a short sentence.
"""

from __future__ import annotations

from dataclasses import replace

from digest.model import Summary

# Characters that count as one word: a longer run of letters costs more.
WORD_CHARS = 20


def text_words(text: str) -> int:
    """Words in `text` for a budget: each counts once per WORD_CHARS characters."""
    return sum(-(-len(word) // WORD_CHARS) for word in text.split())


def summary_words(summary: Summary) -> int:
    """Words a summary puts in the email: its sentences and key points."""
    texts = [*summary.sentences]
    for point in summary.key_points:
        texts.append(point.text)
        texts.extend(point.bullets)
    return sum(text_words(t) for t in texts)


def fit_edition_budget(summaries: list[Summary], edition_words: int) -> list[Summary]:
    """Shorten summaries until all of them together fit ``edition_words``.

    The longest summary gives up something first: its last key point, then its
    last sentence. Every summary keeps at least one sentence, so the result may
    still exceed a budget too small for one sentence per article.
    """
    result = list(summaries)
    sizes = [summary_words(s) for s in result]
    while edition_words and sum(sizes) > edition_words:
        shrinkable = [i for i, s in enumerate(result) if s.key_points or len(s.sentences) > 1]
        if not shrinkable:
            break
        i = max(shrinkable, key=sizes.__getitem__)
        result[i] = _shrink(result[i])
        sizes[i] = summary_words(result[i])
    return result


def _shrink(summary: Summary) -> Summary:
    if summary.key_points:
        return replace(summary, key_points=summary.key_points[:-1])
    return replace(summary, sentences=summary.sentences[:-1])
