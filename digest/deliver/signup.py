"""Sign-up with double opt-in: what a request does, the signed link that
confirms it, and what confirming does. The web pages only parse and show;
every decision is here.

A request is answered the same way whatever the database knows of the
address (new, pending, subscribed, unsubscribed or bounced): only the mail
that follows differs, and it goes to that address alone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr

from email_validator import EmailNotValidError, validate_email

from digest.config import Signup, Smtp
from digest.deliver import tokens
from digest.deliver.message import header_safe, sender_address
from digest.deliver.transports import Outcome, make_transport
from digest.errors import SignupError, TooManyRequests
from digest.store import audience, limits, signups
from digest.store.db import Database

CONFIRM, NOTICE = "confirm", "notice"  # the mail a request sends
NAME_CHARS = 100


@dataclass(frozen=True)
class Request:
    """A sign-up as the form sent it, checked."""

    address: str
    name: str
    sections: frozenset[str]  # empty: every section
    timezone: str


@dataclass(frozen=True)
class Mail:
    """The message a request calls for: a confirmation link, or (to someone
    already subscribed) a note with their preferences link."""

    kind: str
    address: str
    name: str
    token: str


def checked(
    email: str, name: str, sections: list[str], timezone: str, known: list[str], zones: set[str]
) -> Request:
    """The request, or SignupError saying what to fix. Unknown sections are
    ignored; all of them, or none, means every section (new ones included)."""
    try:
        address = str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as e:
        raise SignupError(f"That email address does not look right: {e}") from None
    chosen = frozenset(s for s in sections if s in known)
    if len(chosen) == len(known):
        chosen = frozenset()
    zone = timezone.strip()
    return Request(
        address,
        header_safe(name)[:NAME_CHARS],
        chosen,
        zone if zone in zones else "",
    )


def ask(
    db: Database, rules: Signup, secret: bytes, list_id: str, request: Request, client: str
) -> Mail | None:
    """Record a sign-up request; the mail it calls for, if any.

    Raises TooManyRequests when the client is over its hourly limit. Over the
    per-address limit, or for an address whose mail bounced, nothing is
    sent, and the caller answers exactly as when something is.
    """
    moment = datetime.now(UTC)
    hour, day = f"h:{moment:%Y-%m-%dT%H}", f"d:{moment:%Y-%m-%d}"
    limits.forget_before(db, hour)
    limits.forget_before(db, day)
    if not limits.hit(db, _key(secret, "client", _network(client)), hour, rules.client_limit):
        raise TooManyRequests("too many sign-ups from this network; try again in an hour")
    email = request.address.lower()
    if not limits.hit(db, _key(secret, "address", email), day, rules.address_limit):
        return None
    reason, _ = audience.state_of(db, email)
    if reason is not None and reason.startswith("bounced"):
        return None
    row = signups.get(db, email)
    if reason is None and row is not None and row.status == signups.CONFIRMED:
        # Subscribed already: a note with their links, and nothing changes.
        return Mail(NOTICE, request.address, row.name, tokens.sign(secret, list_id, email))
    stamp = moment.replace(microsecond=0)
    signups.request(
        db, request.address, request.name, request.sections, request.timezone, stamp.isoformat()
    )
    token = tokens.sign_confirmation(secret, list_id, email, int(stamp.timestamp()))
    return Mail(CONFIRM, request.address, request.name, token)


def _network(client: str) -> str:
    """Limits count per IPv4 address, and per /64 for IPv6: one host has a whole /64."""
    try:
        found = ipaddress.ip_address(client)
    except ValueError:
        return client
    if found.version == 6:
        return str(ipaddress.ip_network(f"{found}/64", strict=False))
    return str(found)


def _key(secret: bytes, kind: str, value: str) -> str:
    # Hashed: the counts table never holds a client's address or a reader's.
    return hashlib.sha256(secret + b"\n" + kind.encode() + b"\n" + value.encode()).hexdigest()


# What a confirmation link comes to.
VALID, DONE, ALREADY, EXPIRED, REPLACED, BOUNCED, INVALID = (
    "valid",
    "done",
    "already",
    "expired",
    "replaced",
    "bounced",
    "invalid",
)


@dataclass(frozen=True)
class Confirmation:
    """The state of a confirmation link and the address it is for."""

    state: str
    email: str = ""


def judge(
    db: Database, rules: Signup, secret: bytes, list_id: str, token: str, moment: datetime
) -> Confirmation:
    """What confirming this link would do now, without doing it."""
    found = tokens.verify_confirmation(secret, list_id, token)
    if found is None:
        return Confirmation(INVALID)
    email, issued = found
    row = signups.get(db, email)
    if row is None:
        return Confirmation(INVALID)
    requested = datetime.fromtimestamp(issued, UTC)
    stamp = requested.isoformat()
    if row.confirmed_at and row.confirmed_at >= stamp:
        return Confirmation(ALREADY, email)
    if moment - requested > timedelta(hours=rules.confirm_hours):
        return Confirmation(EXPIRED, email)
    if row.requested_at != stamp:
        return Confirmation(REPLACED if row.requested_at > stamp else INVALID, email)
    reason, _ = audience.state_of(db, email)
    if reason is not None and reason.startswith("bounced"):
        return Confirmation(BOUNCED, email)
    return Confirmation(VALID, email)


def confirm(
    db: Database, rules: Signup, secret: bytes, list_id: str, token: str, moment: datetime
) -> Confirmation:
    """Confirm a sign-up: the reader is on the list from the next edition, with
    the sections they chose, and an earlier unsubscribe is lifted."""
    with db.transaction(immediate=True):
        found = judge(db, rules, secret, list_id, token, moment)
        if found.state != VALID:
            return found
        row = signups.get(db, found.email)
        assert row is not None
        signups.confirm(db, found.email, row.requested_at)
        audience.unsuppress(db, found.email, "unsubscribed")
        audience.set_preferences(db, found.email, row.sections)
    return Confirmation(DONE, found.email)


def message(from_addr: str, to_address: str, to_name: str, subject: str, text: str) -> bytes:
    """A plain-text message from the digest to one reader (the sign-up mails)."""
    sender = sender_address(from_addr)
    mail = EmailMessage(policy=SMTP.clone(utf8=not to_address.isascii()))
    mail["From"] = header_safe(from_addr)
    mail["To"] = formataddr((header_safe(to_name), to_address))
    mail["Subject"] = header_safe(subject)
    mail["Date"] = format_datetime(datetime.now(UTC))
    mail["Message-ID"] = f"<signup.{secrets.token_hex(12)}@{sender.rsplit('@', 1)[1]}>"
    # RFC 3834: an automatic message; vacation responders leave it alone.
    mail["Auto-Submitted"] = "auto-generated"
    # Plain 7-bit lines when the text allows: the link stays whole and readable
    # in any mailbox file, not wrapped by quoted-printable.
    mail.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    return mail.as_bytes()


def send(smtp: Smtp, envelope_from: str, to_address: str, raw: bytes) -> Outcome:
    """Hand one message to the configured transport (SMTP or the Maildir)."""
    channel = make_transport(smtp).open()
    try:
        return channel.send(envelope_from, to_address, raw)
    finally:
        channel.close()
