"""Templates: where they are looked up, the Jinja2 environment with our
filters, and slots (the markers personal values are spliced in at).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup

from digest.config import Look
from digest.errors import RenderError

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


def builtin_templates() -> Path:
    """The packaged templates, or the checkout's top-level folder."""
    package = Path(__file__).resolve().parents[1]  # digest/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parent / "templates"


def template_folders(look: Look) -> list[Path]:
    """Where templates are looked up, in order: the user's folder wins."""
    return [p for p in (look.templates, builtin_templates()) if p]


def template_environment(look: Look) -> jinja2.Environment:
    """User templates first, then the built-in ones as fallback."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_folders(look)]),
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


def render_template(env: jinja2.Environment, name: str, values: Mapping[str, Any]) -> str:
    """Render a template; an error names the file (partials included) and line."""
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as e:
        where = _where(e, env) or name
        raise RenderError(f"template {where} failed: {e}; check your templates folder") from e


def _where(error: jinja2.TemplateError, env: jinja2.Environment) -> str:
    """'partials/article.mjml.j2, line 12': where in which file the error is."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"{error.name or error.filename}, line {error.lineno}"
    found = ""
    trace = error.__traceback__
    folders = [str(p) for p in getattr(env.loader, "searchpath", [])]
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        for folder in folders:
            if filename.startswith(folder.rstrip("/") + "/"):
                relative = filename[len(folder.rstrip("/")) + 1 :]
                found = f"{relative}, line {trace.tb_lineno}"
        trace = trace.tb_next
    return found
