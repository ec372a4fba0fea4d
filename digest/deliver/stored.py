"""Compiled variants kept with their edition: once an edition goes out, every
sender (a resumed `digest send`, any `digest worker` on any host) sends the
same bytes from the store, needing neither the templates nor the list.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from typing import Any

from digest.deliver.audience import Variants
from digest.deliver.bodyhash import body_plans
from digest.deliver.message import MessageSkeleton, Slot, multipart_body
from digest.errors import DeliveryError
from digest.store import editions
from digest.store.db import Database


def key_check(secret: bytes) -> str:
    """A fingerprint of the signing key: senders must share it, or the links
    in their messages would not verify on `digest serve`."""
    return hmac.new(secret, b"digest variant key check", hashlib.sha256).hexdigest()[:16]


def to_json(skeleton: MessageSkeleton, base_url: str) -> str:
    return json.dumps(
        {
            "head": skeleton.head.decode("ascii"),
            "body": [piece.decode("ascii") for piece in skeleton.body],
            "slots": [[slot.name, slot.html] for slot in skeleton.slots],
            "boundary": skeleton.boundary,
            "edition_id": skeleton.edition_id,
            "sender": skeleton.sender,
            "domain": skeleton.domain,
            "list_id": skeleton.list_id,
            "bounce": skeleton.bounce,
            "verp": skeleton.verp,
            "base_url": base_url,
            "key_check": key_check(skeleton.secret),
        }
    )


def from_json(text: str, secret: bytes, where: str) -> tuple[MessageSkeleton, str]:
    data = json.loads(text)
    if data["key_check"] != key_check(secret):
        raise DeliveryError(
            f"{where} was made with another signing key: set DIGEST_SECRET_KEY to the key "
            "of the host that sent it (or leave it empty on both, to share the database's)"
        )
    body, slots = _body(data)
    skeleton = MessageSkeleton(
        head=data["head"].encode("ascii"),
        body=tuple(body),
        slots=tuple(slots),
        digests=body_plans(body),  # the DKIM body-hash state, prepared again here
        boundary=data["boundary"],
        edition_id=data["edition_id"],
        sender=data["sender"],
        domain=data["domain"],
        list_id=data["list_id"],
        secret=secret,
        bounce=str(data.get("bounce", "")),
        verp=bool(data.get("verp", False)),
    )
    return skeleton, str(data["base_url"])


def _body(data: dict[str, Any]) -> tuple[list[bytes], list[Slot]]:
    """The body's fixed pieces and slots; a copy stored before they were kept
    so holds each part's pieces and slot names instead."""
    if "body" in data:
        slots = [Slot(str(name), bool(html)) for name, html in data["slots"]]
        return [piece.encode("ascii") for piece in data["body"]], slots
    parts = [
        (subtype, [p.encode("ascii") for p in data[key]["pieces"]], data[key]["slots"])
        for subtype, key in (("plain", "text"), ("html", "html"))
    ]
    return multipart_body(parts, data["boundary"])


class StoredVariants:
    """A variant's skeleton from the store, compiled and stored on first need
    (only by a sender that has the edition's settings: `compiler`)."""

    def __init__(
        self,
        db: Database,
        edition_id: str,
        secret: bytes,
        compiler: Variants | None = None,
        base_url: str = "",
    ) -> None:
        self.db, self.edition_id, self.secret, self.compiler = db, edition_id, secret, compiler
        self.cache: dict[str, tuple[MessageSkeleton, str]] = {}
        self.base_url = base_url  # of the sender that compiles; a stored copy has its own

    def store(self, variants: Iterable[str]) -> None:
        """Compile each variant (unless kept already) and keep it with the edition."""
        assert self.compiler is not None
        for variant in variants:
            if editions.variant(self.db, self.edition_id, variant) is None:
                text = to_json(self.compiler(variant), self.base_url)
                editions.save_variant(self.db, self.edition_id, variant, text)

    def __call__(self, variant: str) -> MessageSkeleton:
        if variant not in self.cache:
            text = editions.variant(self.db, self.edition_id, variant)
            if text is None:
                if self.compiler is None:
                    raise DeliveryError(
                        f"edition {self.edition_id} has no compiled copy {variant or 'FULL'!r}"
                        " stored; run 'digest send' on the host that made it"
                    )
                self.store([variant])
                text = editions.variant(self.db, self.edition_id, variant)
                assert text is not None
            where = f"edition {self.edition_id}"
            self.cache[variant] = from_json(text, self.secret, where)
        return self.cache[variant][0]

    def link_base(self, variant: str) -> str:
        """The base URL of personal links, as the edition's sender set it."""
        self(variant)
        return self.cache[variant][1]
