"""Transports: SMTP connections (verified TLS, login, pipelined envelopes) and
the local Maildir. Each channel sends one message at a time and says how the
server answered; the send loop decides what that means for the ledger.
"""

from __future__ import annotations

import base64
import contextlib
import mailbox
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from digest.config import Smtp
from digest.errors import DeliveryError
from digest.store import ledger

# Replies that mean "slow down": the whole pool backs off, not just one message.
THROTTLE_CODES = frozenset({421, 451, 454})
UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


@dataclass(frozen=True)
class Outcome:
    """What the server said about one message."""

    status: str  # ledger.SENT, DEFERRED, BOUNCED or FAILED
    reply: str
    throttled: bool = False


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
        # A final delivery: the delivery agent records the envelope sender.
        path = b"Return-Path: <" + UNSAFE_ADDRESS.sub("", sender).encode() + b">\n"
        key = self.box.add(path + message.replace(b"\r\n", b"\n"))
        return Outcome(ledger.SENT, f"stored as {key}")

    def close(self) -> None:
        self.box.close()


class SmtpTransport:
    """A pool's worth of SMTP connections to one server."""

    def __init__(self, settings: Smtp) -> None:
        self.settings = settings

    @property
    def description(self) -> str:
        return self.settings.description

    @property
    def connections(self) -> int:
        return self.settings.connections

    def open(self) -> Channel:
        return SmtpChannel(self.settings)


def make_transport(settings: Smtp) -> Transport:
    if settings.host:
        return SmtpTransport(settings)
    return MaildirTransport(settings.outbox)


def tls_context(settings: Smtp) -> ssl.SSLContext:
    """Verified TLS; a configured CA file replaces the system's trust store."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        raise DeliveryError(
            f"cannot read the CA file {cafile} ({e}); check DIGEST_SMTP_CA_FILE"
        ) from None


class SmtpChannel:
    """One SMTP connection, opened lazily, reopened after a drop or the cap."""

    def __init__(self, settings: Smtp) -> None:
        self.settings = settings
        self.where = f"{settings.host}:{settings.effective_port}"
        self.conn: smtplib.SMTP | None = None
        self.pipelining = False
        self.sent_here = 0

    def send(self, sender: str, recipient: str, message: bytes) -> Outcome:
        if UNSAFE_ADDRESS.search(recipient) or "@" not in recipient:
            return Outcome(ledger.FAILED, f"refused to send to unsafe address {recipient!r}")
        cap = self.settings.messages_per_connection
        if self.conn is not None and self.sent_here >= cap:
            self.close()
        try:
            if self.conn is None:
                self.conn = self._connect()
                self.sent_here = 0
            outcome = self._transaction(self.conn, sender, recipient, message)
        except _Greeting as e:
            self._drop()
            return Outcome(ledger.DEFERRED, e.reply, throttled=True)
        except (OSError, smtplib.SMTPServerDisconnected) as e:
            self._drop()
            return Outcome(ledger.DEFERRED, f"connection lost: {e or type(e).__name__}")
        self.sent_here += 1
        if outcome.throttled:
            # A 421 means the server is closing this connection anyway.
            self._drop()
        return outcome

    def _transaction(
        self, conn: smtplib.SMTP, sender: str, recipient: str, message: bytes
    ) -> Outcome:
        options = "" if recipient.isascii() else " SMTPUTF8"
        if options and not conn.has_extn("smtputf8"):
            return Outcome(ledger.FAILED, "the server cannot take non-ASCII addresses (SMTPUTF8)")
        if self.pipelining:
            # RFC 2920: MAIL, RCPT and DATA go in one write; replies come in order.
            envelope = f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n"
            conn.send(envelope.encode())
            mail, rcpt, data = conn.getreply(), conn.getreply(), conn.getreply()
        else:
            mail = conn.mail(sender, [options.strip()] if options else [])
            rcpt = conn.rcpt(recipient) if mail[0] == 250 else (503, b"")
            data = conn.docmd("DATA") if rcpt[0] in (250, 251) else (503, b"")
        if mail[0] != 250 or rcpt[0] not in (250, 251) or data[0] != 354:
            if data[0] == 354:
                conn.send(b".\r\n")
                conn.getreply()
            return self._refused(conn, sender, mail, rcpt)
        body = _dot_stuffed(message)
        conn.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        code, text = conn.getreply()
        reply = _reply(code, text)
        if code == 250:
            return Outcome(ledger.SENT, reply)
        if 500 <= code < 600:
            return Outcome(ledger.FAILED, f"message refused: {reply}")
        return Outcome(ledger.DEFERRED, reply, throttled=code in THROTTLE_CODES)

    def _refused(
        self,
        conn: smtplib.SMTP,
        sender: str,
        mail: tuple[int, bytes],
        rcpt: tuple[int, bytes],
    ) -> Outcome:
        if mail[0] != 250:
            code, text = mail
            if 500 <= code < 600:
                raise DeliveryError(
                    f"SMTP server {self.where} refused the sender {sender} "
                    f"({_reply(code, text)}); check DIGEST_BOUNCE_ADDRESS and the server's sender "
                    "rules (a relay that takes only your login's address as the sender needs "
                    "DIGEST_BOUNCE_ADDRESS set to it and DIGEST_VERP=false)"
                )
        else:
            code, text = rcpt
        if code != 421:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.rset()
        reply = _reply(code, text)
        if 500 <= code < 600:
            return Outcome(ledger.BOUNCED, reply)
        return Outcome(ledger.DEFERRED, reply, throttled=code in THROTTLE_CODES)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = tls_context(s)
        try:
            conn = self._open(context)
            self._secure(conn, context)
            if s.user:
                _login(conn, s.user, s.password)
        except smtplib.SMTPConnectError as e:
            if 500 <= e.smtp_code < 600:  # "554 no service for you": no retry helps
                raise DeliveryError(
                    f"SMTP server {self.where} refused the connection "
                    f"({_reply(e.smtp_code, e.smtp_error)}); check DIGEST_SMTP_HOST and "
                    "that this machine may send through it"
                ) from None
            raise _Greeting(_reply(e.smtp_code, e.smtp_error)) from None
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(
                f"SMTP server {self.where} refused the login for {s.user!r} "
                f"({e.smtp_code}); check DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise DeliveryError(
                f"SMTP server {self.where} offers no login (AUTH) on this connection; "
                "check DIGEST_SMTP_SECURITY, or unset DIGEST_SMTP_USER for an open relay"
            ) from None
        except ssl.SSLCertVerificationError as e:
            raise DeliveryError(
                f"the TLS certificate of {self.where} is not valid ({e.verify_message}); "
                "set DIGEST_SMTP_CA_FILE to the CA that signed it, or fix the server"
            ) from None
        except ssl.SSLError as e:
            raise DeliveryError(
                f"TLS with {self.where} failed ({e.reason}); check DIGEST_SMTP_SECURITY "
                "and DIGEST_SMTP_PORT"
            ) from None
        except (OSError, smtplib.SMTPException) as e:
            raise DeliveryError(
                f"cannot reach SMTP server {self.where} ({e or type(e).__name__}); check "
                "DIGEST_SMTP_HOST and DIGEST_SMTP_PORT"
            ) from None
        return conn

    def _open(self, context: ssl.SSLContext) -> smtplib.SMTP:
        s = self.settings
        host, port = s.host, s.effective_port
        if s.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=s.timeout, context=context)
        else:
            conn = smtplib.SMTP(host, port, timeout=s.timeout)
        with contextlib.suppress(OSError):
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _secure(self, conn: smtplib.SMTP, context: ssl.SSLContext) -> None:
        conn.ehlo()
        if self.settings.security == "starttls":
            if not conn.has_extn("starttls"):
                conn.close()
                raise DeliveryError(
                    f"SMTP server {self.where} does not offer STARTTLS; refusing to send "
                    "in clear. Use DIGEST_SMTP_SECURITY=ssl, or =none only for a trusted "
                    "local relay"
                )
            code, text = conn.starttls(context=context)
            if code != 220:
                raise DeliveryError(f"STARTTLS refused by {self.where}: {_reply(code, text)}")
            conn.ehlo()
        self.pipelining = conn.has_extn("pipelining")

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.conn.quit()
            self._drop()


class _Greeting(Exception):
    """The server answered the connection with a temporary refusal (421 busy)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def _login(conn: smtplib.SMTP, user: str, password: str) -> None:
    """One attempt with PLAIN (or LOGIN), credentials in UTF-8 (RFC 4616).

    smtplib's login() would try every mechanism in turn after a refusal (some
    servers then stall), and its auth() encodes as ASCII: a non-ASCII password
    raised an error whose repr held the password.
    """
    offered = conn.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in offered:
        code, text = conn.docmd("AUTH", "PLAIN " + _b64(f"\0{user}\0{password}"))
    elif "LOGIN" in offered:
        code, text = conn.docmd("AUTH", "LOGIN " + _b64(user))
        if code == 334:
            code, text = conn.docmd(_b64(password))
    else:
        raise smtplib.SMTPNotSupportedError("no AUTH PLAIN or LOGIN")
    if code not in (235, 503):
        raise smtplib.SMTPAuthenticationError(code, text)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _dot_stuffed(message: bytes) -> bytes:
    """RFC 5321 4.5.2; bytes.replace is many times faster than a regex on 100 KB."""
    body = message.replace(b"\n.", b"\n..")
    return b"." + body if body.startswith(b".") else body


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(shown.split())}".strip()
