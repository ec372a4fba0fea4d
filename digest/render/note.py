"""The short note sent instead of an edition to a subscriber whose sections
have nothing new (setting `empty_note`): compiled once per edition, filled
per subscriber like the edition itself.
"""

from __future__ import annotations

from mjml import mjml_to_html

from digest.config import Look
from digest.errors import RenderError
from digest.model import Edition
from digest.render.compile import context, prepare
from digest.render.compiled import CompiledEmail
from digest.render.templates import render_template, template_environment


def compile_note(edition: Edition, look: Look) -> CompiledEmail:
    """The note for this edition: what it holds, and links to read or re-choose."""
    env = template_environment(look)
    values = context(edition, look)
    values["subject"] = f"{edition.title} #{edition.number}: nothing new in your sections"
    values["preheader"] = "There is nothing new in your sections this time."
    result = mjml_to_html(render_template(env, "note.mjml.j2", values))
    if result.errors:
        raise RenderError(f"MJML reported errors in note.mjml.j2: {result.errors}")
    return CompiledEmail(
        edition_id=edition.id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=prepare(result.html, markup=True),
        text=prepare(render_template(env, "note.txt.j2", values)),
        html_bytes=len(result.html.encode()),
    )
