"""Reading one bounce report: is it a bounce (flufl.bounce knows RFC 3464
and the common non-standard formats: Exim, Exchange, old Gmail, qmail ...),
hard or soft, why, and which delivery it names (the VERP tag in the address
it came to, or the Message-ID of the message it quotes).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Set
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

HARD, SOFT, DELAY, NONE = "hard", "soft", "delay", "none"
REASON_CHARS = 300
STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Full mailboxes, messages too large, and a sender's give-up after retries
# (Exim's "retry timeout exceeded") say nothing against the address itself.
SOFT_TEXT = re.compile(
    r"quota|mailbox (?:is )?full|insufficient (?:system )?storage|retry time ?out exceeded"
    r"|too large|size exceeds|temporar",
    re.IGNORECASE,
)
# Status codes of a permanent failure that is not the address's fault: a full
# mailbox (5.2.2), a message too long for it (5.2.3) or the system (5.3.4),
# a policy refusal of the sender or content (5.7.x). Counted as soft.
SOFT_STATUS = re.compile(r"5\.2\.[23]|5\.3\.4|5\.7\.\d+")
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
MESSAGE_ID = re.compile(r"^Message-I[dD]:[ \t]*(<[^<>\s]+>)", re.MULTILINE)


@dataclass(frozen=True)
class Report:
    """What one message in the bounce mailbox says."""

    key: str  # its identity: its own Message-ID, else a hash of its bytes
    kind: str  # HARD, SOFT, DELAY, or NONE (not a bounce: an auto-reply, a person)
    status: str  # the enhanced status code, such as 5.1.1, when it gives one
    reason: str  # the server's words, on one line
    tags: tuple[str, ...]  # VERP tags of the address it was sent to
    message_ids: tuple[str, ...]  # Message-IDs of the message it quotes


def read(raw: bytes, mailbox: str) -> Report:
    """Read a report that arrived at `mailbox` (the bounce address)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    own = str(message.get("Message-ID") or "").strip()
    key = own or "sha256:" + hashlib.sha256(raw).hexdigest()
    temporary: Set[bytes]
    permanent: Set[bytes]
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a malformed report is not a bounce we can trust
        temporary, permanent = frozenset(), frozenset()
    failed = {a.decode("ascii", "replace").lower() for a in permanent | temporary}
    status, reason = _diagnosis(message, failed)
    if permanent:
        soft = status.startswith("4") or SOFT_STATUS.fullmatch(status) or SOFT_TEXT.search(reason)
        kind = SOFT if soft else HARD
    else:
        kind = DELAY if temporary else NONE
    return Report(
        key=key[:200],
        kind=kind,
        status=status,
        reason=reason,
        tags=_tags(message, mailbox),
        message_ids=tuple(m for m in _quoted_ids(message) if m != own),
    )


def _diagnosis(message: Message, failed: set[str]) -> tuple[str, str]:
    """(status, reason): from the first failed recipient's block of a DSN,
    else from the words around a failed address in the report's text."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).lower()
            if action.startswith(("fail", "delay", "error")):
                status = _status(str(block.get("Status", "")))
                reason = _line(str(block.get("Diagnostic-Code", "")))
                reason = reason.split(";", 1)[-1].strip() if ";" in reason[:20] else reason
                return status or _status(reason), reason or f"status {status}"
    text = _text(message)
    where = min((i for a in failed if (i := text.lower().find(a)) >= 0), default=-1)
    # The address's paragraph: the lines after it up to the next blank line.
    around = _line(re.split(r"\n[ \t]*\n", text[where:], maxsplit=1)[0]) if where >= 0 else ""
    return _status(around), around[:REASON_CHARS]


def _status(text: str) -> str:
    found = STATUS.search(text)
    return found.group(0) if found else ""


def _line(text: str) -> str:
    return " ".join(text.split())[:REASON_CHARS]


def _text(message: Message) -> str:
    """The report's own words: its first text/plain part (not the quoted message)."""
    for part in message.walk():
        if part.get_content_type() == "message/rfc822":
            break
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return payload.decode(charset, "replace")
                except LookupError:
                    return payload.decode("utf-8", "replace")
    return ""


def _tags(message: Message, mailbox: str) -> tuple[str, ...]:
    """VERP tags: `TAG` of `local+TAG@domain` in the addresses it was sent to."""
    local = re.escape(mailbox.rsplit("@", 1)[0])
    pattern = re.compile(rf"(?<![\w.+-]){local}\+([A-Za-z0-9][A-Za-z0-9.-]{{0,62}})@", re.I)
    found: list[str] = []
    for header in RECIPIENT_HEADERS:
        for value in message.get_all(header) or []:
            for tag in pattern.findall(str(value)):
                if tag.lower() not in found:
                    found.append(tag.lower())
    return tuple(found)


def _quoted_ids(message: Message) -> list[str]:
    """Message-IDs of the original message: from an attached message or its
    headers (RFC 3464), or from a copy quoted in the text (Exim, old Gmail)."""
    found: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and part.is_multipart():
            for inner in part.get_payload():
                if isinstance(inner, Message) and inner.get("Message-ID"):
                    found.append(str(inner["Message-ID"]).strip())
        elif kind in ("text/rfc822-headers", "text/plain"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found += MESSAGE_ID.findall(payload.decode("utf-8", "replace"))
    return list(dict.fromkeys(found))
