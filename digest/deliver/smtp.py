"""SMTP connections: verified TLS, one login, pipelined envelopes, and a
timeout per stage (RFC 5321 4.5.3.2). Each reply goes to `replies.judge`;
a refusal that no retry can help (login, TLS, sender) stops the send.
"""

from __future__ import annotations

import base64
import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import replace

from digest.config import Smtp
from digest.deliver import replies as r
from digest.deliver.replies import Outcome
from digest.errors import DeliveryError
from digest.store import ledger

UNSAFE_ADDRESS = re.compile(r"[\x00-\x20\x7f<>]")


class _Lost(Exception):
    """The session cannot go on: a temporary refusal, a timeout or a drop."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.reply)
        self.outcome = outcome


class Sessions:
    """Shared by a transport's channels: sessions that failed to open in a row.
    Past `limit` the server is not coming back soon, and the send stops (the
    rest stays pending) rather than deferring the whole list one by one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failed = 0
        self.lock = threading.Lock()

    def opened(self) -> None:
        with self.lock:
            self.failed = 0

    def failure(self, where: str, outcome: Outcome) -> None:
        with self.lock:
            self.failed += 1
            if self.failed < self.limit:
                return
        raise DeliveryError(
            f"SMTP server {where}: {self.limit} sessions in a row could not be opened (last: "
            f"{outcome.reply}); the rest stays pending for the next send. Check the server"
        )


def tls_context(settings: Smtp) -> ssl.SSLContext:
    """Verified TLS; a configured CA file replaces the system's trust store."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as e:
        raise DeliveryError(
            f"cannot read the CA file {cafile} ({e}); check DIGEST_SMTP_CA_FILE"
        ) from None


class _Session(smtplib.SMTP):
    """smtplib's client without its own connect: we open the socket (with the
    connect timeout) and read the greeting ourselves, each stage timed."""

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._host = host  # the name STARTTLS verifies the certificate against


class SmtpChannel:
    """One SMTP connection, opened lazily, reopened after a drop or the cap."""

    def __init__(self, settings: Smtp, sessions: Sessions | None = None) -> None:
        self.settings = settings
        self.sessions = sessions or Sessions(1)
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
        except _Lost as e:
            self._drop()
            if e.outcome.stage not in r.SESSION_STAGES:
                return e.outcome
            # No session to be had: whatever the reason, the server needs a pause.
            self.sessions.failure(self.where, e.outcome)
            return replace(e.outcome, throttled=True)
        self.sent_here += 1
        if outcome.throttled or outcome.reply.startswith("421"):
            self._drop()  # 421: the server closes this connection anyway
        return outcome

    # One reply, and the stages of a session

    @contextlib.contextmanager
    def _at(self, stage: str, seconds: float) -> Iterator[None]:
        """Within `seconds` per read or write; a drop or timeout is `_Lost`."""
        conn = self.conn
        if conn is not None and conn.sock is not None:
            conn.sock.settimeout(seconds)
        try:
            yield
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            if isinstance(e, ssl.SSLError) and stage in (r.CONNECT, r.STARTTLS):
                raise  # a failed handshake: no retry helps (see _connect)
            timed_out = isinstance(e, TimeoutError) or isinstance(e.__context__, TimeoutError)
            raise _Lost(r.lost(stage, timed_out, seconds, type(e).__name__)) from None
        except smtplib.SMTPResponseException as e:  # an unreadable reply line
            raise _Lost(r.lost(stage, False, seconds, f"{e.smtp_code} unreadable reply")) from None

    def _ask(self, stage: str, command: str = "", seconds: float = 0.0) -> tuple[int, bytes]:
        assert self.conn is not None
        with self._at(stage, seconds or self.settings.timeout):
            if command:
                self.conn.send(command.encode("utf-8") + b"\r\n")
            return self.conn.getreply()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = tls_context(s)
        self.conn = conn = _Session(s.host, s.timeout)
        try:
            conn.sock = self._socket(context)
            code, text = self._ask(r.GREETING)
            fix = "check DIGEST_SMTP_HOST and that this machine may send through it"
            self._refuse_session(r.GREETING, code, text, fix)
            self._hello(conn)
            if s.security == "starttls":
                self._starttls(conn, context)
            if s.user:
                self._login(conn)
        except _Lost:
            self._drop()
            raise
        except ssl.SSLCertVerificationError as e:
            self._drop()
            raise DeliveryError(
                f"the TLS certificate of {self.where} is not valid ({e.verify_message}); "
                "set DIGEST_SMTP_CA_FILE to the CA that signed it, or fix the server"
            ) from None
        except ssl.SSLError as e:
            self._drop()
            raise DeliveryError(
                f"TLS with {self.where} failed ({e.reason}); check DIGEST_SMTP_SECURITY "
                "and DIGEST_SMTP_PORT"
            ) from None
        self.sessions.opened()
        self.pipelining = conn.has_extn("pipelining")
        return conn

    def _socket(self, context: ssl.SSLContext) -> socket.socket:
        s = self.settings
        try:
            sock = socket.create_connection((s.host, s.effective_port), s.connect_timeout)
        except TimeoutError:
            raise _Lost(r.lost(r.CONNECT, True, s.connect_timeout)) from None
        except OSError as e:
            raise DeliveryError(
                f"cannot reach SMTP server {self.where} ({e.strerror or e}); check "
                "DIGEST_SMTP_HOST and DIGEST_SMTP_PORT"
            ) from None
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if s.security == "ssl":
            try:
                return context.wrap_socket(sock, server_hostname=s.host)  # connect timeout
            except TimeoutError:
                sock.close()
                raise _Lost(r.lost(r.CONNECT, True, s.connect_timeout)) from None
            except BaseException:
                sock.close()
                raise
        return sock

    def _refuse_session(self, stage: str, code: int, text: bytes, fix: str) -> None:
        """A refused session: temporarily (4xx: `_Lost`) or for good (5xx: stop)."""
        if 200 <= code < 400:
            return
        if 400 <= code < 500:
            outcome = r.judge(stage, code, text)
            assert outcome is not None
            raise _Lost(outcome)
        what = "the connection" if stage == r.GREETING else stage
        raise DeliveryError(
            f"SMTP server {self.where} refused {what} ({r.plain_reply(code, text)}); {fix}"
        )

    def _hello(self, conn: smtplib.SMTP) -> None:
        with self._at(r.EHLO, self.settings.timeout):
            code, text = conn.ehlo()
            if code != 250 and not 400 <= code < 500:
                code, text = conn.helo()  # an old server without ESMTP
        self._refuse_session(r.EHLO, code, text, "check the server's settings")

    def _starttls(self, conn: smtplib.SMTP, context: ssl.SSLContext) -> None:
        if not conn.has_extn("starttls"):
            raise DeliveryError(
                f"SMTP server {self.where} does not offer STARTTLS; refusing to send "
                "in clear. Use DIGEST_SMTP_SECURITY=ssl, or =none only for a trusted "
                "local relay"
            )
        code, text = self._ask(r.STARTTLS, "STARTTLS")
        # Never on in clear: a temporary refusal (454) is retried later over TLS.
        self._refuse_session(r.STARTTLS, code, text, "check DIGEST_SMTP_SECURITY")
        assert conn.sock is not None
        with self._at(r.STARTTLS, self.settings.connect_timeout):
            conn.sock = context.wrap_socket(conn.sock, server_hostname=self.settings.host)
        conn.file = None
        conn.ehlo_resp = conn.helo_resp = None
        conn.esmtp_features, conn.does_esmtp = {}, False
        self._hello(conn)

    def _login(self, conn: smtplib.SMTP) -> None:
        """One attempt with PLAIN (or LOGIN), credentials in UTF-8 (RFC 4616).

        smtplib's login() would try every mechanism in turn after a refusal
        (some servers then stall), and its auth() encodes as ASCII: a non-ASCII
        password raised an error whose repr held the password."""
        s = self.settings
        offered = conn.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in offered:
            code, text = self._ask(r.AUTH, "AUTH PLAIN " + _b64(f"\0{s.user}\0{s.password}"))
        elif "LOGIN" in offered:
            code, text = self._ask(r.AUTH, "AUTH LOGIN " + _b64(s.user))
            if code == 334:
                code, text = self._ask(r.AUTH, _b64(s.password))
        else:
            raise DeliveryError(
                f"SMTP server {self.where} offers no login (AUTH) on this connection; "
                "check DIGEST_SMTP_SECURITY, or unset DIGEST_SMTP_USER for an open relay"
            )
        if code in (235, 503):  # 503: already authenticated
            return
        if 400 <= code < 500:  # 454: a temporary failure, tried again later
            self._refuse_session(r.AUTH, code, text, "")
        raise DeliveryError(
            f"SMTP server {self.where} refused the login for {s.user!r} "
            f"({code}); check DIGEST_SMTP_USER and DIGEST_SMTP_PASSWORD"
        )

    # One message

    def _transaction(
        self, conn: smtplib.SMTP, sender: str, recipient: str, message: bytes
    ) -> Outcome:
        options = ""
        if not recipient.isascii():
            if not conn.has_extn("smtputf8"):
                return Outcome(ledger.PENDING, f"{r.NEEDS_SMTPUTF8} (the server does not offer it)")
            options = " SMTPUTF8" + (" BODY=8BITMIME" if conn.has_extn("8bitmime") else "")
        envelope = [
            (r.MAIL, f"MAIL FROM:<{sender}>{options}"),
            (r.RCPT, f"RCPT TO:<{recipient}>"),
            (r.DATA, "DATA"),
        ]
        answers = self._envelope(envelope)
        for stage, code, text in answers:
            if stage == r.MAIL and code >= 500:
                raise DeliveryError(
                    f"SMTP server {self.where} refused the sender {sender} "
                    f"({r.plain_reply(code, text)}); check DIGEST_BOUNCE_ADDRESS and the "
                    "server's sender rules (a relay that takes only your login's address as "
                    "the sender needs DIGEST_BOUNCE_ADDRESS set to it and DIGEST_VERP=false)"
                )
            refused = r.judge(stage, code, text)
            if refused is not None:
                self._abandon(answers)
                return refused
        if len(answers) < len(envelope):  # the server closed without refusing
            raise _Lost(r.lost(envelope[len(answers)][0], False, 0))
        return self._data(conn, message)

    def _envelope(self, envelope: list[tuple[str, str]]) -> list[tuple[str, int, bytes]]:
        """MAIL, RCPT and DATA: one write with PIPELINING (RFC 2920), else one
        at a time. A server may refuse and close at once (421): the replies
        read before the close are the answer."""
        answers: list[tuple[str, int, bytes]] = []
        if self.pipelining:
            assert self.conn is not None
            with self._at(r.MAIL, self.settings.timeout):
                self.conn.send("".join(c + "\r\n" for _, c in envelope).encode("utf-8"))
        for stage, command in envelope:
            try:
                code, text = self._ask(stage, "" if self.pipelining else command)
            except _Lost:
                if any(r.judge(*answer) is not None for answer in answers):
                    break
                raise
            answers.append((stage, code, text))
            if not self.pipelining and r.judge(stage, code, text) is not None:
                break
        return answers

    def _abandon(self, answers: list[tuple[str, int, bytes]]) -> None:
        """After a refusal: end an accepted DATA with an empty message, reset
        the envelope (unless the server is closing: 421)."""
        if self.conn is None or any(code == 421 for _, code, _ in answers):
            return
        with contextlib.suppress(_Lost):
            if answers[-1][0] == r.DATA and answers[-1][1] == 354:
                self._ask(r.END, ".")
            self._ask("RSET", "RSET")

    def _data(self, conn: smtplib.SMTP, message: bytes) -> Outcome:
        body = _dot_stuffed(message)
        with self._at(r.DATA, self.settings.timeout):
            conn.send(body + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        # RFC 5321 4.5.3.2.6: ten minutes for the reply after the final dot; a
        # shorter wait makes a slow server receive the message twice.
        code, text = self._ask(r.END, seconds=self.settings.data_timeout)
        outcome = r.judge(r.END, code, text)
        assert outcome is not None
        return outcome

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException, _Lost):
                self._ask("QUIT", "QUIT", seconds=min(self.settings.timeout, 10.0))
            self._drop()


class SmtpTransport:
    """A pool's worth of SMTP connections to one server."""

    def __init__(self, settings: Smtp) -> None:
        self.settings = settings
        # A few sessions per connection may fail before the send stops.
        self.sessions = Sessions(max(4, 2 * settings.connections))

    @property
    def description(self) -> str:
        return self.settings.description

    @property
    def connections(self) -> int:
        return self.settings.connections

    def open(self) -> SmtpChannel:
        return SmtpChannel(self.settings, self.sessions)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def _dot_stuffed(message: bytes) -> bytes:
    """RFC 5321 4.5.2; bytes.replace is many times faster than a regex on 100 KB."""
    body = message.replace(b"\n.", b"\n..")
    return b"." + body if body.startswith(b".") else body
