"""Delivery: transports (SMTP, Maildir) and the ledger-driven send loop.

A ledger row is written before the first attempt and updated after the
server's answer, so a resumed send touches only what was not delivered.
"""

from __future__ import annotations

import contextlib
import logging
import mailbox
import smtplib
import sqlite3
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from digest import store
from digest.config import Settings
from digest.errors import DeliveryError
from digest.mail import MessageSkeleton, message_id, render_message
from digest.model import Subscriber

log = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class Outcome:
    """What the server said about one recipient."""

    status: str  # store.SENT, store.DEFERRED or store.BOUNCED
    reply: str


class Transport(Protocol):
    """Hands one message to its destination."""

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome: ...
    def close(self) -> None: ...

    @property
    def description(self) -> str: ...


class MaildirTransport:
    """Delivers into a local Maildir: the default when no SMTP host is set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.box = mailbox.Maildir(path, create=True)

    @property
    def description(self) -> str:
        return f"Maildir {self.path}"

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome:
        key = self.box.add(message.replace(b"\r\n", b"\n"))
        return Outcome(store.SENT, f"stored as {key}")

    def close(self) -> None:
        self.box.close()


class SmtpTransport:
    """One SMTP connection, opened lazily, TLS verified unless security=none."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.host = settings.smtp_host
        self.port = settings.effective_smtp_port
        self.connection: smtplib.SMTP | None = None

    @property
    def description(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.settings.smtp_security})"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        try:
            if s.smtp_security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=s.smtp_timeout, context=context
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=s.smtp_timeout)
            conn.ehlo()
            if s.smtp_security == "starttls":
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise DeliveryError(
                        f"SMTP server {self.host}:{self.port} does not offer STARTTLS; "
                        "refusing to send in clear. Use DIGEST_SMTP_SECURITY=ssl, or =none "
                        "only for a trusted local relay"
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if s.smtp_user:
                conn.login(s.smtp_user, s.smtp_password)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(
                f"SMTP server {self.host}:{self.port} refused the login for {s.smtp_user!r} "
                f"({e.smtp_code}); check DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD"
            ) from None
        except ssl.SSLError as e:
            raise DeliveryError(
                f"TLS with {self.host}:{self.port} failed: {e.reason}; check the server certificate"
            ) from e
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(
                f"cannot reach SMTP server {self.host}:{self.port}: {e}; check "
                "DIGEST_SMTP_HOST and DIGEST_SMTP_PORT"
            ) from e
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome:
        if self.connection is None:
            self.connection = self._connect()
        try:
            self.connection.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients[recipient]
            return _refused(code, text)
        except smtplib.SMTPSenderRefused as e:
            raise DeliveryError(
                f"SMTP server refused the sender {sender} ({e.smtp_code} "
                f"{e.smtp_error.decode(errors='replace')}); check DIGEST_FROM"
            ) from None
        except smtplib.SMTPResponseException as e:
            return _refused(e.smtp_code, e.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError) as e:
            self.connection = None
            return Outcome(store.DEFERRED, f"connection lost: {e}")
        return Outcome(store.SENT, "250 accepted")

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.connection.quit()
            self.connection = None


def _refused(code: int, text: bytes | str) -> Outcome:
    reply = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return Outcome(store.BOUNCED if 500 <= code < 600 else store.DEFERRED, reply)


def make_transport(settings: Settings) -> Transport:
    if settings.smtp_host:
        return SmtpTransport(settings)
    return MaildirTransport(settings.outbox)


@dataclass
class DeliveryReport:
    """Counts for one run of the send loop."""

    counts: dict[str, int] = field(default_factory=dict)
    skipped_suppressed: int = 0
    skipped_empty: int = 0

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1


def _batches(items: Iterable[Subscriber], size: int) -> Iterator[list[Subscriber]]:
    batch: list[Subscriber] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


SkeletonFor = Callable[[Subscriber], MessageSkeleton | None]


def deliver(
    edition: str,
    skeleton_for: SkeletonFor,
    subscribers: Iterable[Subscriber],
    transport: Transport,
    db: sqlite3.Connection,
    base_url: str,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send the edition to every subscriber not yet delivered, ledger first.

    `skeleton_for` gives the message variant for a subscriber's sections, or
    None when none of their sections has anything in this edition. When
    `stop` is set, the message in flight finishes and the rest stay pending.
    """
    report = DeliveryReport()
    for batch in _batches(subscribers, BATCH):
        if stop is not None and stop.is_set():
            break
        wanted: dict[str, tuple[Subscriber, MessageSkeleton]] = {}
        for sub in batch:
            skeleton = skeleton_for(sub)
            if store.is_suppressed(db, sub.email):
                report.skipped_suppressed += 1
            elif skeleton is None:
                report.skipped_empty += 1
            else:
                wanted.setdefault(sub.email.lower(), (sub, skeleton))
        pairs = [(email, message_id(sk, email)) for email, (_, sk) in wanted.items()]
        for email, _mid in store.claim_deliveries(db, edition, pairs):
            if stop is not None and stop.is_set():
                break
            sub, skeleton = wanted[email]
            store.mark_sending(db, edition, [email])
            message = render_message(skeleton, base_url, sub.email, sub.name)
            try:
                outcome = transport.send(skeleton.sender, sub.email, message)
            except DeliveryError:
                # Nothing reached the server: the row goes back to waiting.
                store.reset_pending(db, edition, [email])
                raise
            store.record_result(db, edition, [(email, outcome.status, outcome.reply)])
            if outcome.status == store.BOUNCED:
                store.suppress(db, email, f"bounced: {outcome.reply}")
            report.add(outcome.status)
    return report
