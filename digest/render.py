"""Rendering: Jinja2 fills the MJML and text templates, MJML compiles the
HTML once per edition (and section variant), and per subscriber only slots
are filled. Personal values never reach a template: it emits slot markers.
"""

from __future__ import annotations

import html
import logging
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup
from mjml import mjml_to_html

from digest import budget, render_cache
from digest.config import Settings
from digest.errors import RenderError
from digest.model import Edition, EditionArticle

log = logging.getLogger(__name__)

SLOT_OPEN, SLOT_CLOSE = "\ue000", "\ue001"
SLOT = re.compile(f"{SLOT_OPEN}([a-z0-9_]+){SLOT_CLOSE}")
SLOT_NAMES = ("name", "email", "unsubscribe_url", "preferences_url")
# Further subscriber columns become slots named with this prefix.
FIELD_PREFIX = "x_"
# A field that opens a link target is filled from its value passed through
# `safe_url`, so a `javascript:` cell in the list never becomes a link.
URL_PREFIX = "url_"
# Slots whose values are links we build and sign ourselves.
OWN_URL_SLOTS = frozenset({"unsubscribe_url", "preferences_url"})
URL_ATTRIBUTE = re.compile(
    r"\b(?:href|src|action|formaction|background|poster)\s*=\s*[\"']?$", re.IGNORECASE
)
WIDTH = 72
URL_SAFE = "/:?#[]@!$&()*+,;=%~-._"
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True)
class Prepared:
    """Rendered output cut at its slots: parts[0] slot[0] parts[1] ... parts[-1]."""

    parts: tuple[str, ...]
    slots: tuple[str, ...]


@dataclass(frozen=True)
class CompiledEmail:
    """One edition, compiled once, ready to be filled per subscriber.

    `dropped` names the lowest-ranked articles left out to stay within the
    size budget (they are in the web archive); `html_bytes` is after minifying.
    """

    edition_id: str
    subject: str
    preheader: str
    html: Prepared
    text: Prepared
    html_bytes: int
    dropped: tuple[str, ...] = ()
    budget_bytes: int = budget.BUDGET_BYTES


def builtin_templates() -> Path:
    """The packaged templates, or the checkout's top-level folder."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def template_folders(settings: Settings) -> list[Path]:
    """Where templates are looked up, in order: the user's folder wins."""
    return [p for p in (settings.templates, builtin_templates()) if p]


def template_environment(settings: Settings) -> jinja2.Environment:
    """User templates first, then the built-in ones as fallback."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_folders(settings)]),
        autoescape=jinja2.select_autoescape(["html", "mjml.j2", "html.j2"]),
        finalize=_strip_slot_markers,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["wrap"] = wrap
    env.filters["join_items"] = join_items
    env.filters["mjml_attr"] = mjml_attr
    env.globals["slot"] = lambda name: Markup(f"{SLOT_OPEN}{name}{SLOT_CLOSE}")
    env.globals["field"] = lambda column: Markup(f"{SLOT_OPEN}{field_slot(column)}{SLOT_CLOSE}")
    return env


def field_slot(column: str) -> str:
    """The slot for a further CSV column: `field("Company")` fills from column Company."""
    return FIELD_PREFIX + (re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_") or "column")


def field_values(extra: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Slot values for a subscriber's further columns (see `field_slot`): as
    text, and as a link target for a field that opens one (see `prepare`)."""
    values = {}
    for column, value in extra:
        slot = field_slot(column)
        values[slot] = value
        values[URL_PREFIX + slot] = safe_url(value) if value else ""
    return values


def _strip_slot_markers(value: Any) -> Any:
    # Content from sources must never be able to open a slot of its own.
    if isinstance(value, str) and not isinstance(value, Markup):
        return value.replace(SLOT_OPEN, "").replace(SLOT_CLOSE, "")
    return value


def safe_url(url: str) -> str:
    """Only absolute http(s) links survive; anything else becomes '#'."""
    try:
        parts = urlsplit(str(url).strip())
    except ValueError:
        return "#"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "#"
    # MJML re-emits some attributes unescaped, so quotes, angle brackets and
    # spaces must not survive even as entities: percent-encode them here.
    return quote(parts.geturl(), safe=URL_SAFE)


def wrap(text: str, indent: str = "", subsequent: str = "") -> str:
    lines = textwrap.wrap(
        str(text),
        WIDTH,
        initial_indent=indent,
        subsequent_indent=subsequent or indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return "\n".join(lines)


# MJML decodes entities in these texts and re-emits them inside a double-quoted
# attribute (mj-title becomes an aria-label, the logo's alt) and the <title>,
# where the minifier decodes &lt; too: quotes and angle brackets become
# look-alikes. An ampersand stays one (escaped as usual), so "Q&A" reaches
# the inbox as written.
MJML_ATTR = str.maketrans({'"': "”", "'": "’", "<": "‹", ">": "›"})


def mjml_attr(value: Any) -> str:
    """Text MJML copies into an attribute with its quotes decoded."""
    return _strip_slot_markers(str(value)).translate(MJML_ATTR)  # type: ignore[no-any-return]


def join_items(items: Any) -> str:
    """Bullets as one line: sentences side by side, fragments with semicolons."""
    texts = [str(item).strip() for item in items if str(item).strip()]
    if all(text[-1] in ".!?…" for text in texts):
        return " ".join(texts)
    return "; ".join(text.rstrip(";,") for text in texts)


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


def view_url(settings: Settings, edition_id: str) -> str:
    """The edition's page in the web archive: the same for every reader."""
    return f"{settings.base_url.rstrip('/')}/archive/{quote(edition_id, safe='')}"


def context(
    edition: Edition, settings: Settings, web: bool = False, more: int = 0
) -> dict[str, Any]:
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
        "date_label": date_label(edition.created, settings.language),
        "subject": subject_line(edition),
        "preheader": settings.preheader or preheader(edition),
        "language": settings.language,
        "sections": sections,
        "article_count": sum(len(s["articles"]) for s in sections),
        "brand": {
            "color": settings.brand_color,
            "accent": settings.accent_color,
            "logo_url": safe_url(settings.logo_url) if settings.logo_url else "",
        },
        "view_url": view_url(settings, edition.id),
        "postal_address": settings.postal_address,
        "footer_text": settings.footer_text,
        "web": web,
        "more": more,
    }


def _article(article: EditionArticle) -> dict[str, Any]:
    label = source_label(article)
    meta = " · ".join(part for part in (label, article.published) if part)
    return {**article.__dict__, "source_label": label, "meta": meta}


def subject_line(edition: Edition) -> str:
    return f"{edition.title} #{edition.number}: {edition.created[:10]}"


def preheader(edition: Edition) -> str:
    titles = [a.title for s in edition.sections for a in s.articles][:3]
    return " · ".join(titles)


def compile_edition(edition: Edition, settings: Settings) -> CompiledEmail:
    """Render both templates and compile the MJML: the per-edition work.

    Identical inputs (templates, edition, output settings) are compiled once
    per process, and once at all when `render_cache` names a folder.
    """
    key = render_cache.cache_key(template_folders(settings), edition, settings, "email")
    cached = render_cache.load(key, settings.render_cache)
    if cached is not None:
        return cached
    compiled = compile_uncached(edition, settings)
    render_cache.store(key, compiled, settings.render_cache)
    return compiled


def compile_uncached(edition: Edition, settings: Settings) -> CompiledEmail:
    """Compile, and drop the lowest-ranked articles while over the size budget."""
    env = template_environment(settings)
    kept, first = edition, 0
    dropped: tuple[str, ...] = ()
    while True:
        values = context(kept, settings, more=len(dropped))
        markup = budget.minify(_compile_mjml(_render(env, "digest.mjml.j2", values)))
        size = len(SLOT.sub("", markup).encode())
        first = first or size
        smaller = budget.drop_lowest(kept, size) if budget.over(size) else None
        if smaller is None:
            break
        kept, newly = smaller
        dropped = (*dropped, *newly)
    if budget.over(first):
        log.warning("%s", budget.over_budget_message(first, size, dropped))
    text = tidy_text(_render(env, "digest.txt.j2", values))
    return CompiledEmail(
        edition_id=edition.id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=prepare(markup, markup=True),
        text=prepare(text),
        html_bytes=size,
        dropped=dropped,
    )


def web_version(edition: Edition, settings: Settings) -> str:
    """The edition as a web page for the archive: every article, no personal data."""
    key = render_cache.cache_key(template_folders(settings), edition, settings, "web")
    cached = render_cache.load(key, settings.render_cache)
    if cached is None:
        env = template_environment(settings)
        values = context(edition, settings, web=True)
        markup = budget.minify(_compile_mjml(_render(env, "digest.mjml.j2", values)))
        text = tidy_text(_render(env, "digest.txt.j2", values))
        cached = CompiledEmail(
            edition.id,
            values["subject"],
            values["preheader"],
            prepare(markup, markup=True),
            prepare(text),
            0,
        )
        cached = replace(cached, html_bytes=len(markup.encode()))
        render_cache.store(key, cached, settings.render_cache)
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


def _render(env: jinja2.Environment, name: str, values: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as e:
        where = f" (line {e.lineno})" if isinstance(e, jinja2.TemplateSyntaxError) else ""
        raise RenderError(f"template {name}{where} failed: {e}; check your templates folder") from e


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
