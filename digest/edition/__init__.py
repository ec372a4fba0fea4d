"""Edition: the one builder that turns collected articles into an edition,
and the edition file an editor may change before it is sent."""

from digest.edition.build import (
    FULL,
    NOTE,
    build_edition,
    default_subject,
    edition_id_for,
    for_sections,
    is_empty,
    renumbered,
    variant_sections,
)
from digest.edition.file import (
    from_json,
    load_edition,
    save_edition,
    to_json,
    write_atomically,
)

__all__ = [
    "FULL",
    "NOTE",
    "build_edition",
    "default_subject",
    "edition_id_for",
    "for_sections",
    "from_json",
    "is_empty",
    "load_edition",
    "renumbered",
    "save_edition",
    "to_json",
    "variant_sections",
    "write_atomically",
]
