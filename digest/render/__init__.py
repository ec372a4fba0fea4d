"""Render: Jinja2 + MJML compiled once per edition and section set, the
plain-text twin, the size budget, and the splice of personal values."""

from digest.render.budget import BUDGET_BYTES
from digest.render.compile import (
    compile_edition,
    fill,
    personalize,
    subject_line,
    view_url,
    web_version,
)
from digest.render.compiled import CompiledEmail, Prepared
from digest.render.note import compile_note
from digest.render.templates import (
    builtin_templates,
    field_values,
    safe_url,
    template_environment,
    template_folders,
)

__all__ = [
    "BUDGET_BYTES",
    "CompiledEmail",
    "Prepared",
    "builtin_templates",
    "compile_edition",
    "compile_note",
    "field_values",
    "fill",
    "personalize",
    "safe_url",
    "subject_line",
    "template_environment",
    "template_folders",
    "view_url",
    "web_version",
]
