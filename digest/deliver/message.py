"""Messages: headers, the MIME skeleton and unsubscribe links.

The skeleton is built and encoded once per edition variant, with its body's
DKIM hash state; per subscriber only the recipient headers and the values
for the body's slots are encoded.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header
from email.quoprimime import body_encode
from email.utils import format_datetime, getaddresses
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email

from digest.config import Sender
from digest.deliver import tokens
from digest.deliver.bodyhash import BodyPlans, body_plans
from digest.errors import ConfigError
from digest.render import CompiledEmail, field_values

CRLF = "\r\n"
SOFT_BREAK = "=\r\n"
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# A display name that needs quoting (RFC 5322 specials), and the longest one
# written as it is; anything longer or not ASCII becomes folded encoded words.
SPECIALS = re.compile(r'[][\\()<>@,:;".]')
PLAIN_NAME_CHARS = 60
WORD_BYTES = 45  # base64 of 45 octets is 60 characters: each encoded word fits in 75


@dataclass(frozen=True)
class Slot:
    """A place in the body for a subscriber's value; HTML ones are escaped."""

    name: str
    html: bool


@dataclass(frozen=True)
class MessageSkeleton:
    """Everything of a message that is the same for every subscriber.

    The body is `body[0]`, a slot's value, `body[1]`, ... : the MIME framing
    and the QP-encoded static text, encoded once; `digests` holds their DKIM
    body-hash state, so a signature hashes only the values anew.
    """

    head: bytes
    body: tuple[bytes, ...]
    slots: tuple[Slot, ...]
    digests: BodyPlans = field(repr=False)
    boundary: str
    edition_id: str
    sender: str
    domain: str
    list_id: str
    secret: bytes
    bounce: str = ""  # the mailbox bounces go to (MAIL FROM); the sender when empty
    verp: bool = False  # tag the bounce address per delivery (return_path)


@dataclass(frozen=True)
class Message:
    """One subscriber's message: its header section (ending in the empty
    line) and the QP-encoded values for the skeleton's slots."""

    head: bytes
    skeleton: MessageSkeleton
    values: tuple[bytes, ...]

    @property
    def body(self) -> bytes:
        fixed = self.skeleton.body
        chunks = [fixed[0]]
        for value, piece in zip(self.values, fixed[1:], strict=True):
            chunks += (value, piece)
        return b"".join(chunks)

    def __bytes__(self) -> bytes:
        return self.head + self.body


def header_safe(value: str) -> str:
    """No CR, LF or other control character from data may shape a header."""
    return CONTROL.sub(" ", value).strip()


def mailbox(name: str, address: str) -> str:
    """`Name <address>` for From and To. A long or non-ASCII name becomes
    RFC 2047 encoded words folded onto lines of at most 78 characters, so no
    header line nears RFC 5322's 998 octets, whatever the list holds."""
    name = header_safe(name)
    if not name:
        return address
    if name.isascii() and len(name) <= PLAIN_NAME_CHARS:
        if SPECIALS.search(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{address}>"
    return f"{_encoded_words(name)}{CRLF} <{address}>"


def _encoded_words(text: str) -> str:
    """RFC 2047 "B" words of at most WORD_BYTES octets each, one per line,
    broken after a space where one is near: a reader that (against the RFC)
    keeps the folding space between two words then splits no word in two."""
    chunks: list[str] = []
    current, size, space = "", 0, -1
    for char in text:
        octets = len(char.encode("utf-8"))
        if size + octets > WORD_BYTES:
            cut = space + 1 if space >= 0 else len(current)
            chunks.append(current[:cut])
            current = current[cut:]
            size, space = len(current.encode("utf-8")), current.rfind(" ")
        current += char
        size += octets
        if char == " ":
            space = len(current) - 1
    chunks.append(current)
    words = (
        "=?utf-8?b?" + base64.b64encode(c.encode("utf-8")).decode("ascii") + "?=" for c in chunks
    )
    return (CRLF + " ").join(words)


def envelope_address(address: str) -> str:
    """The address as it goes on the envelope and in To: an international
    domain in its ASCII form (IDNA), which every server takes; a non-ASCII
    local part stays as it is and needs a server offering SMTPUTF8."""
    if address.isascii():
        return address
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return address  # the transport refuses it, as that delivery's failure
    return f"{valid.local_part}@{valid.ascii_domain}"


def sender_address(from_addr: str) -> str:
    pairs = getaddresses([header_safe(from_addr)])
    if not pairs or "@" not in pairs[0][1]:
        raise ConfigError(f"DIGEST_FROM {from_addr!r} has no address; use 'Name <you@example.org>'")
    return pairs[0][1]


def bounce_mailbox(sender: Sender) -> str:
    """Where bounces go: DIGEST_BOUNCE_ADDRESS, else bounces@ the sender's domain."""
    if sender.bounce_address:
        return sender.bounce_address
    return "bounces@" + sender_address(sender.from_addr).rsplit("@", 1)[1]


VERP_TOKEN = re.compile(r"[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*")


def return_path(skeleton: MessageSkeleton, mid: str) -> str:
    """The envelope sender (MAIL FROM) of one delivery, where its bounce goes.

    With VERP it is the bounce mailbox tagged with the local part of the
    delivery's Message-ID (`bounces+2026-11-30t0700.9f2c...@domain`), so a
    bounce names its delivery even when the report quotes nothing of the
    message. Where the tag would not fit a local part (64 octets), the plain
    mailbox: the bounce is then matched by the Message-ID it quotes.
    """
    mailbox = skeleton.bounce or skeleton.sender
    if not skeleton.verp:
        return mailbox
    token = mid.strip().strip("<>").rsplit("@", 1)[0]
    local, domain = mailbox.rsplit("@", 1)
    tagged = f"{local}+{token}"
    if not VERP_TOKEN.fullmatch(token) or len(tagged) > 64:
        return mailbox
    return f"{tagged}@{domain}"


def message_id_for(token: str, domain: str) -> str:
    """The Message-ID a VERP tag stands for (see return_path)."""
    return f"<{token.lower()}@{domain}>"


Part = tuple[str, Sequence[bytes], Sequence[str]]  # subtype, QP-encoded pieces, slot names


def multipart_body(parts: Sequence[Part], boundary: str) -> tuple[list[bytes], list[Slot]]:
    """The fixed pieces of a multipart/alternative body of encoded parts,
    and its slots: the MIME framing joins the static pieces around them."""
    fixed, slots = [b""], []
    for subtype, pieces, names in parts:
        fixed[-1] += (
            f"--{boundary}{CRLF}Content-Type: text/{subtype}; charset=utf-8{CRLF}"
            f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
        ).encode("ascii") + pieces[0]
        for name, piece in zip(names, pieces[1:], strict=True):
            slots.append(Slot(name, html=subtype == "html"))
            fixed.append(piece)
        fixed[-1] += CRLF.encode()  # the CRLF before a boundary belongs to it
    fixed[-1] += f"--{boundary}--{CRLF}".encode("ascii")
    return fixed, slots


def build_skeleton(compiled: CompiledEmail, sender: Sender, secret: bytes) -> MessageSkeleton:
    """Encode headers and bodies once per edition (and section variant)."""
    address = sender_address(sender.from_addr)
    domain = address.rsplit("@", 1)[1]
    list_id = tokens.list_id(sender.title, address, sender.list_id)
    boundary = "=_digest_" + hashlib.sha256(compiled.edition_id.encode()).hexdigest()[:24]
    name, _ = getaddresses([header_safe(sender.from_addr)])[0]
    head_lines = [
        f"From: {mailbox(name, address)}",
        f"Subject: {_encoded(compiled.subject, 'Subject')}",
        f"List-Id: {_encoded(sender.title, 'List-Id')} <{list_id}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    parts = [
        (subtype, [_qp(piece) for piece in prepared.parts], prepared.slots)
        for subtype, prepared in (("plain", compiled.text), ("html", compiled.html))
    ]
    body, slots = multipart_body(parts, boundary)
    return MessageSkeleton(
        head=(CRLF.join(head_lines) + CRLF).encode("ascii"),
        body=tuple(body),
        slots=tuple(slots),
        digests=body_plans(body),
        boundary=boundary,
        edition_id=compiled.edition_id,
        sender=address,
        domain=domain,
        list_id=list_id,
        secret=secret,
        bounce=bounce_mailbox(sender),
        verp=sender.verp,
    )


def _encoded(value: str, header_name: str) -> str:
    """RFC 2047 encoded words folded with CRLF (Header's default is a bare LF)."""
    header = Header(header_safe(value), "utf-8", maxlinelen=76, header_name=header_name)
    return header.encode(linesep=CRLF)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "digest"


class MessageIds:
    """The Message-IDs of an edition's deliveries, made once at the fan-out and
    kept in the ledger (a repeated message carries the one its row holds):
    the edition, a running number and an HMAC of the address. The running
    number keeps them in order, so the ledger's index on them grows at its
    end rather than at a million random places."""

    def __init__(self, secret: bytes, edition_id: str, domain: str, start: int = 0) -> None:
        # Keyed BLAKE2b is a MAC of its own (RFC 7693), and cheap on short input.
        key = hashlib.sha256(b"digest message-id\n" + secret).digest()
        # The keyed state after the edition's line, copied per address: half
        # the cost of keying a new hash each time, and the same MAC.
        self.keyed = hashlib.blake2b(f"{edition_id}\n".encode(), key=key, digest_size=8)
        self.prefix = f"<{_slug(edition_id)}."
        self.suffix = f"@{domain}>"
        self.next = start

    def __call__(self, key: str) -> str:
        """The next Message-ID, for the address `key` (in lower case)."""
        mac = self.keyed.copy()
        mac.update(key.encode())
        number, self.next = self.next, self.next + 1
        return f"{self.prefix}{number:07d}.{mac.hexdigest()}{self.suffix}"


def message_date(clock: float | None = None) -> str:
    """The Date header: the moment the message is handed over (RFC 5322 3.6.1)."""
    moment = datetime.fromtimestamp(time.time() if clock is None else clock, UTC)
    return format_datetime(moment)


def one_off_message_id(skeleton: MessageSkeleton) -> str:
    """A test copy's own Message-ID. Were it the subscriber's, a mail client
    that drops a repeated Message-ID (Gmail does) would hide the real edition."""
    return f"<test.{secrets.token_hex(12)}@{skeleton.domain}>"


def unsubscribe_token(secret: bytes, list_id: str, email: str) -> str:
    """`address.signature`; digest/tokens.py signs and `digest serve` verifies."""
    return tokens.sign(secret, list_id, email)


def _qp(value: str) -> bytes:
    """Quoted-printable UTF-8 ending in a soft break, so pieces can be joined."""
    # body_encode treats each char as one octet: hand it the UTF-8 bytes as latin-1.
    octets = value.encode("utf-8").decode("latin-1")
    return (body_encode(octets, maxlinelen=76, eol=CRLF) + SOFT_BREAK).encode("ascii")


def _encode_values(skeleton: MessageSkeleton, values: dict[str, str]) -> tuple[bytes, ...]:
    encoded = []
    for slot in skeleton.slots:
        value = values.get(slot.name, "")
        encoded.append(_qp(_html_escape(value) if slot.html else value))
    return tuple(encoded)


def _html_escape(value: str) -> str:
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def personal_values(
    skeleton: MessageSkeleton,
    base_url: str,
    email: str,
    name: str,
    extra: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    token = unsubscribe_token(skeleton.secret, skeleton.list_id, email)
    base = base_url.rstrip("/")
    fields = {slot: header_safe(value) for slot, value in field_values(extra).items()}
    return {
        **fields,
        "name": header_safe(name) or "reader",
        "email": email,
        "token": token,
        "unsubscribe_url": f"{base}/unsubscribe?token={token}",
        "preferences_url": f"{base}/preferences?token={token}",
    }


def render_message(
    skeleton: MessageSkeleton,
    base_url: str,
    email: str,
    name: str,
    mid: str,
    extra: Iterable[tuple[str, str]] = (),
    date: str = "",
) -> Message:
    """The whole message for one subscriber: the per-subscriber work
    (`bytes()` of it is what is sent, unless DKIM signs it first).

    `mid` is the Message-ID the ledger holds for this row; `extra` are the
    subscriber's further CSV columns, for `field()` slots; `date` the Date
    header (now, when empty).
    """
    values = personal_values(skeleton, base_url, email, name, extra)
    mailto = (
        f"mailto:unsubscribe@{skeleton.domain}?subject={quote('unsubscribe ' + values['token'])}"
    )
    unsubscribe = f"<{values['unsubscribe_url']}>,{CRLF} <{mailto}>"
    # Only an address needing SMTPUTF8 puts UTF-8 in a header (RFC 6532).
    personal = (
        f"To: {mailbox(name, header_safe(email))}{CRLF}Date: {date or message_date()}{CRLF}"
        f"Message-ID: {header_safe(mid)}{CRLF}"
        f"List-Unsubscribe: {unsubscribe}{CRLF}{CRLF}"
    ).encode()
    return Message(skeleton.head + personal, skeleton, _encode_values(skeleton, values))
