"""The short note sent instead of an edition to a subscriber whose sections
have nothing new (setting `empty_note`): compiled once per edition, filled
per subscriber like the edition itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2
from mjml import mjml_to_html

from digest import render
from digest.config import Settings
from digest.errors import RenderError
from digest.mail import MessageSkeleton, build_skeleton
from digest.model import Edition, Subscriber

SkeletonFor = Callable[[Subscriber], MessageSkeleton | None]


def compile_note(edition: Edition, settings: Settings) -> render.CompiledEmail:
    """The note for this edition: what it holds, and links to read or re-choose."""
    env = render.template_environment(settings)
    values = render.context(edition, settings)
    values["subject"] = f"{edition.title} #{edition.number}: nothing new in your sections"
    values["preheader"] = "There is nothing new in your sections this time."
    result = mjml_to_html(_render(env, "note.mjml.j2", values))
    if result.errors:
        raise RenderError(f"MJML reported errors in note.mjml.j2: {result.errors}")
    return render.CompiledEmail(
        edition_id=edition.id,
        subject=values["subject"],
        preheader=values["preheader"],
        html=render.prepare(result.html, markup=True),
        text=render.prepare(_render(env, "note.txt.j2", values)),
        html_bytes=len(result.html.encode()),
    )


def _render(env: jinja2.Environment, name: str, values: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(values)
    except jinja2.TemplateError as e:
        raise RenderError(f"template {name} failed: {e}; check your templates folder") from e


class OrNote:
    """Wraps the per-subscriber variant choice: where it gives nothing (no
    news in the subscriber's sections) and the setting asks for it, the note."""

    def __init__(
        self, variants: SkeletonFor, settings: Settings, secret: bytes, edition: Edition
    ) -> None:
        self.variants, self.settings, self.secret, self.edition = (
            variants,
            settings,
            secret,
            edition,
        )
        self.note: MessageSkeleton | None = None

    def __call__(self, subscriber: Subscriber) -> MessageSkeleton | None:
        skeleton = self.variants(subscriber)
        if skeleton is not None or not self.settings.empty_note:
            return skeleton
        if self.note is None:
            compiled = compile_note(self.edition, self.settings)
            self.note = build_skeleton(
                compiled,
                self.settings.from_addr,
                self.settings.title,
                self.secret,
                fixed_list_id=self.settings.list_id,
            )
        return self.note
