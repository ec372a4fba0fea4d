"""Transports: an SMTP server (see `smtp.py`) or the local Maildir. Each
channel sends one message at a time and says how it went; what a reply means
is decided in `replies.py`, and what that means for the ledger in the send loop.
"""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Protocol

from digest.config import Smtp
from digest.deliver.replies import NEEDS_SMTPUTF8, Outcome
from digest.deliver.smtp import UNSAFE_ADDRESS, SmtpChannel, SmtpTransport, tls_context
from digest.store import ledger

__all__ = [
    "Channel",
    "MaildirTransport",
    "Outcome",
    "SmtpChannel",
    "SmtpTransport",
    "Transport",
    "make_transport",
    "tls_context",
]


class Channel(Protocol):
    """One connection (or mailbox) handing messages over one at a time."""

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome: ...
    def close(self) -> None: ...


class Transport(Protocol):
    """Opens channels; `connections` of them may be used at once."""

    @property
    def description(self) -> str: ...

    @property
    def connections(self) -> int: ...

    def open(self) -> Channel: ...


class MaildirTransport:
    """Delivers into a local Maildir: the default when no SMTP host is set."""

    connections = 1

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description(self) -> str:
        return f"Maildir {self.path}"

    def open(self) -> Channel:
        return MaildirChannel(self.path)


class MaildirChannel:
    def __init__(self, path: Path) -> None:
        self.box = mailbox.Maildir(path, create=True)

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome:
        if not recipient.isascii():
            # A UTF-8 header is for a server that offers SMTPUTF8 (RFC 6532),
            # not for a mailbox file any mail client may read.
            return Outcome(ledger.PENDING, f"{NEEDS_SMTPUTF8} (a Maildir cannot take it)")
        # A final delivery: the delivery agent records the envelope sender.
        path = b"Return-Path: <" + UNSAFE_ADDRESS.sub("", sender).encode() + b">\n"
        key = self.box.add(path + message.replace(b"\r\n", b"\n"))
        return Outcome(ledger.SENT, f"stored as {key}")

    def close(self) -> None:
        self.box.close()


def make_transport(settings: Smtp) -> Transport:
    if settings.host:
        return SmtpTransport(settings)
    return MaildirTransport(settings.outbox)
