"""Rendering: Jinja2 fills the MJML and text templates, MJML compiles the
HTML once per edition, and per subscriber only slots are filled.

Personal values are never rendered into the template: the template emits
slot markers that survive MJML, and `fill` splices escaped values into them.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup
from mjml import mjml_to_html

from digest.config import Settings
from digest.errors import RenderError
from digest.model import Edition, EditionArticle

SLOT_OPEN, SLOT_CLOSE = "\ue000", "\ue001"
SLOT = re.compile(f"{SLOT_OPEN}([a-z_]+){SLOT_CLOSE}")
SLOT_NAMES = ("name", "email", "unsubscribe_url", "preferences_url")
WIDTH = 72
URL_SAFE = "/:?#[]@!$&()*+,;=%~-._"


@dataclass(frozen=True)
class Prepared:
    """Rendered output cut at its slots: parts[0] slot[0] parts[1] ... parts[-1]."""

    parts: tuple[str, ...]
    slots: tuple[str, ...]


@dataclass(frozen=True)
class CompiledEmail:
    """One edition, compiled once, ready to be filled per subscriber."""

    edition_id: str
    subject: str
    preheader: str
    html: Prepared
    text: Prepared
    html_bytes: int


def builtin_templates() -> Path:
    """The packaged templates, or the checkout's top-level folder."""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


def template_environment(settings: Settings) -> jinja2.Environment:
    """User templates first, then the built-in ones as fallback."""
    folders = [str(p) for p in (settings.templates, builtin_templates()) if p]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(["html", "mjml.j2", "html.j2"]),
        finalize=_strip_slot_markers,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["safe_url"] = safe_url
    env.filters["wrap"] = wrap
    env.globals["slot"] = lambda name: Markup(f"{SLOT_OPEN}{name}{SLOT_CLOSE}")
    return env


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


def source_label(article: EditionArticle) -> str:
    host = urlsplit(article.url).hostname or ""
    return host.removeprefix("www.") if safe_url(article.url) != "#" else ""


def context(edition: Edition, settings: Settings) -> dict[str, Any]:
    """The values the templates see; the same for every subscriber."""
    sections = [
        {"key": s.key, "title": s.title, "articles": [_article(a) for a in s.articles]}
        for s in edition.sections
    ]
    return {
        "title": edition.title,
        "number": edition.number,
        "date": edition.created[:10],
        "subject": subject_line(edition),
        "preheader": preheader(edition),
        "language": settings.language,
        "sections": sections,
        "brand": {"color": "#1d3557", "accent": "#c0392b"},
        "view_url": f"{settings.base_url.rstrip('/')}/archive/{edition.id}",
        "postal_address": "",
    }


def _article(article: EditionArticle) -> dict[str, Any]:
    return {**article.__dict__, "source_label": source_label(article)}


def subject_line(edition: Edition) -> str:
    return f"{edition.title} #{edition.number}: {edition.created[:10]}"


def preheader(edition: Edition) -> str:
    titles = [a.title for s in edition.sections for a in s.articles][:3]
    return " · ".join(titles)


def compile_edition(edition: Edition, settings: Settings) -> CompiledEmail:
    """Render both templates and compile the MJML: the per-edition work."""
    env = template_environment(settings)
    values = context(edition, settings)
    mjml_source = _render(env, "digest.mjml.j2", values)
    result = mjml_to_html(mjml_source)
    if result.errors:
        raise RenderError(f"MJML reported errors in digest.mjml.j2: {result.errors}")
    text = _render(env, "digest.txt.j2", values)
    return CompiledEmail(
        edition_id=edition.id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=prepare(result.html),
        text=prepare(text),
        html_bytes=len(result.html.encode()),
    )


def _render(env: jinja2.Environment, name: str, values: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as e:
        raise RenderError(f"template {name} failed: {e}; check your templates folder") from e


def prepare(rendered: str) -> Prepared:
    """Cut rendered output at its slot markers."""
    pieces = SLOT.split(rendered)
    return Prepared(tuple(pieces[0::2]), tuple(pieces[1::2]))


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
