"""What compiling produces: an edition's email, cut at its slots, ready to be
filled per subscriber (and cached as it is)."""

from __future__ import annotations

from dataclasses import dataclass

from digest.render.budget import BUDGET_BYTES


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
    budget_bytes: int = BUDGET_BYTES
