"""The size budget: Gmail clips an HTML body over 102 KB, hiding the footer
with the unsubscribe link. Minify, measure, and drop the lowest-ranked
articles (a rank of 0 is the top story) in favour of the web archive.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

import minify_html

from digest.model import Edition

BUDGET_BYTES = 102 * 1024
# Room kept for what is spliced in per subscriber (name, address, links).
PERSONAL_ALLOWANCE = 1024
# An unquoted attribute whose value is a slot: quote it, because the value
# spliced in per subscriber may hold characters an unquoted value cannot.
UNQUOTED_SLOT = re.compile("=(\ue000[a-z_]+\ue001)(?=[\\s/>])")


def minify(markup: str) -> str:
    """Minify compiled HTML the way mail clients still read it."""
    small = minify_html.minify(
        markup,
        # Outlook's conditional comments carry its whole table layout.
        keep_comments=True,
        keep_closing_tags=True,
        keep_html_and_head_opening_tags=True,
        # The CSS minifier rewrites media queries into range syntax
        # ("width>=480px") that most mail clients do not understand.
        minify_css=False,
        minify_js=False,
    )
    return str(UNQUOTED_SLOT.sub(r'="\1"', small))


def over(size: int) -> bool:
    """Whether HTML of this size (without personal values) risks being clipped."""
    return size + PERSONAL_ALLOWANCE > BUDGET_BYTES


def ranked_last_first(edition: Edition) -> list[tuple[float, int, str]]:
    """(rank, position, id) of every article, lowest-ranked first."""
    entries = [
        (article.rank, position, article.id)
        for position, article in enumerate(a for s in edition.sections for a in s.articles)
    ]
    return sorted(entries, reverse=True)


def drop_lowest(edition: Edition, size: int) -> tuple[Edition, tuple[str, ...]] | None:
    """The edition without enough of its lowest-ranked articles to fit, roughly.

    Returns None when only one article is left: a single story is always sent.
    """
    order = ranked_last_first(edition)
    if len(order) <= 1:
        return None
    per_article = size / len(order)
    count = max(1, math.ceil((size + PERSONAL_ALLOWANCE - BUDGET_BYTES) / per_article))
    count = min(count, len(order) - 1)
    gone = {article_id for _, _, article_id in order[:count]}
    titles = tuple(a.title for s in edition.sections for a in s.articles if a.id in gone)
    sections = tuple(
        replace(s, articles=tuple(a for a in s.articles if a.id not in gone))
        for s in edition.sections
    )
    return replace(edition, sections=tuple(s for s in sections if s.articles)), titles


def over_budget_message(first: int, size: int, dropped: tuple[str, ...]) -> str:
    """The warning an editor sees, with the figures."""
    limit = f"Gmail's {BUDGET_BYTES / 1024:.0f} KB budget"
    if over(size):
        return (
            f"the email is {size / 1024:.1f} KB of HTML, over {limit}, even with a single "
            "article; Gmail will clip it: shorten the summaries or the templates"
        )
    listed = "; ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else "")
    return (
        f"the email was {first / 1024:.1f} KB of HTML, over {limit}: moved "
        f"{len(dropped)} lowest-ranked article(s) to the web archive link ({listed}); "
        f"now {size / 1024:.1f} KB"
    )
