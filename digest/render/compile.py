"""Compiling: Jinja2 fills the MJML and text templates, MJML compiles the
HTML once per edition (and section variant), and per subscriber only slots
are filled. Personal values never reach a template: it emits slot markers.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import quote, urlsplit

from mjml import mjml_to_html

from digest.config import Look
from digest.errors import RenderError
from digest.model import Edition, EditionArticle
from digest.render import budget, colours
from digest.render import cache as render_cache
from digest.render.compiled import CompiledEmail, Prepared
from digest.render.templates import (
    MONTHS,
    OWN_URL_SLOTS,
    SLOT,
    URL_ATTRIBUTE,
    URL_PREFIX,
    render_template,
    safe_url,
    template_environment,
    template_folders,
)

log = logging.getLogger(__name__)

# After the preheader, inboxes show the start of the body ("View in your
# browser"); a run of invisible characters fills the preview instead. Each
# group is a combining grapheme joiner, a zero-width non-joiner and a no-break
# space: nothing to see, but clients count them as preview text.
PREHEADER_FILLER = "\u034f\u200c\u00a0" * 90


def source_label(article: EditionArticle) -> str:
    host = urlsplit(article.url).hostname or ""
    return host.removeprefix("www.") if safe_url(article.url) != "#" else ""


def date_label(created: str, language: str) -> str:
    """'29 November 2026' for English digests; the ISO date otherwise."""
    try:
        day = date.fromisoformat(created[:10])
    except ValueError:
        return created[:10]
    if language.lower().startswith("en"):
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    return day.isoformat()


def view_url(look: Look, edition_id: str) -> str:
    """The edition's page in the web archive: the same for every reader."""
    return f"{look.base_url.rstrip('/')}/archive/{quote(edition_id, safe='')}"


def context(edition: Edition, look: Look, web: bool = False, more: int = 0) -> dict[str, Any]:
    """The values the templates see; the same for every subscriber."""
    sections = [
        {"key": s.key, "title": s.title, "articles": [_article(a) for a in s.articles]}
        for s in edition.sections
        if s.articles
    ]
    return {
        "title": edition.title,
        "number": edition.number,
        "date": edition.created[:10],
        "date_label": date_label(edition.created, look.language),
        "subject": edition.subject or subject_line(edition),
        "note": edition.note,
        "preheader": look.preheader or preheader(edition),
        "language": look.language,
        "sections": sections,
        "article_count": sum(len(s["articles"]) for s in sections),
        "brand": {
            **colours.palette(look.brand_color, look.accent_color),
            "logo_url": safe_url(look.logo_url) if look.logo_url else "",
        },
        "preheader_filler": PREHEADER_FILLER,
        "view_url": view_url(look, edition.id),
        "postal_address": look.postal_address,
        "footer_text": look.footer_text,
        "web": web,
        "more": more,
    }


def _article(article: EditionArticle) -> dict[str, Any]:
    label = source_label(article)
    meta = " · ".join(part for part in (label, article.published) if part)
    return {**article.__dict__, "source_label": label, "meta": meta}


def subject_line(edition: Edition) -> str:
    """The subject of an edition that does not set its own."""
    return f"{edition.title} #{edition.number}: {edition.created[:10]}"


def preheader(edition: Edition) -> str:
    titles = [a.title for s in edition.sections for a in s.articles][:3]
    return " · ".join(titles)


def compile_edition(edition: Edition, look: Look) -> CompiledEmail:
    """Render both templates and compile the MJML: the per-edition work.

    Identical inputs (templates, edition, output settings) are compiled once
    per process, and once at all when `render_cache` names a folder.
    """
    key = render_cache.cache_key(template_folders(look), edition, look, "email")
    cached = render_cache.load(key, look.render_cache)
    if cached is not None:
        return cached
    compiled = compile_uncached(edition, look)
    render_cache.store(key, compiled, look.render_cache)
    return compiled


def compile_uncached(edition: Edition, look: Look) -> CompiledEmail:
    """Compile, and drop the lowest-ranked articles while over the size budget."""
    env = template_environment(look)
    kept, first = edition, 0
    dropped: tuple[str, ...] = ()
    while True:
        values = context(kept, look, more=len(dropped))
        markup = budget.minify(_compile_mjml(render_template(env, "digest.mjml.j2", values)))
        size = len(SLOT.sub("", markup).encode())
        first = first or size
        smaller = budget.drop_lowest(kept, size) if budget.over(size) else None
        if smaller is None:
            break
        kept, newly = smaller
        dropped = (*dropped, *newly)
    if budget.over(first):
        log.warning("%s", budget.over_budget_message(first, size, dropped))
    text = tidy_text(render_template(env, "digest.txt.j2", values))
    return CompiledEmail(
        edition_id=edition.id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=prepare(markup, markup=True),
        text=prepare(text),
        html_bytes=size,
        dropped=dropped,
    )


def web_version(edition: Edition, look: Look) -> str:
    """The edition as a web page for the archive: every article, no personal data."""
    key = render_cache.cache_key(template_folders(look), edition, look, "web")
    cached = render_cache.load(key, look.render_cache)
    if cached is None:
        env = template_environment(look)
        values = context(edition, look, web=True)
        markup = budget.minify(_compile_mjml(render_template(env, "digest.mjml.j2", values)))
        text = tidy_text(render_template(env, "digest.txt.j2", values))
        cached = CompiledEmail(
            edition.id,
            values["subject"],
            values["preheader"],
            prepare(markup, markup=True),
            prepare(text),
            0,
        )
        cached = replace(cached, html_bytes=len(markup.encode()))
        render_cache.store(key, cached, look.render_cache)
    # A user template may still use a slot; the web page fills none of them.
    return fill(cached.html, {}, html.escape)


def tidy_text(text: str) -> str:
    """At most one blank line in a row, and none at the ends, whatever the template."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _compile_mjml(source: str) -> str:
    result = mjml_to_html(source)
    if result.errors:
        raise RenderError(f"MJML reported errors in digest.mjml.j2: {result.errors}")
    return str(result.html)


def prepare(rendered: str, markup: bool = False) -> Prepared:
    """Cut rendered output at its slot markers. In markup, a slot that opens a
    link target is renamed to take its URL-checked value: a field's through
    `safe_url`, a name or address none at all (only our own links may)."""
    pieces = SLOT.split(rendered)
    parts, slots = pieces[0::2], pieces[1::2]
    if markup:
        in_url = False
        for index, (before, slot) in enumerate(zip(parts, slots, strict=False)):
            # A slot right after one that opened a link target continues it.
            in_url = bool(URL_ATTRIBUTE.search(before[-200:])) or (in_url and not before)
            if in_url and slot not in OWN_URL_SLOTS:
                slots[index] = URL_PREFIX + slot
    return Prepared(tuple(parts), tuple(slots))


def fill(prepared: Prepared, values: Mapping[str, str], escape: Callable[[str], str]) -> str:
    """Splice escaped personal values into prepared output: the per-subscriber work."""
    out = [prepared.parts[0]]
    for slot, part in zip(prepared.slots, prepared.parts[1:], strict=True):
        out.append(escape(values.get(slot, "")))
        out.append(part)
    return "".join(out)


def personalize(compiled: CompiledEmail, values: Mapping[str, str]) -> tuple[str, str]:
    """The HTML and text for one subscriber."""
    html_body = fill(compiled.html, values, html.escape)
    return html_body, fill(compiled.text, values, str)
