"""A real SMTP server for tests: aiosmtpd bound to port 0 on loopback."""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class PortZeroController(Controller):
    """aiosmtpd's Controller, learning the port the kernel picked for port 0."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def serving(handler: Any, **kwargs: Any) -> Iterator[PortZeroController]:
    """A real SMTP server on 127.0.0.1, on a port the kernel picks, for a block."""
    controller = PortZeroController(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


class RecordingHandler:
    """Keeps every message; refuses recipients listed in `refuse` with a code."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def parsed(self) -> list[EmailMessage]:
        with self.lock:
            raw = [m[2] for m in self.messages]
        return [email.message_from_bytes(r, policy=email.policy.default) for r in raw]  # type: ignore[misc]


class ScriptedHandler(RecordingHandler):
    """Answers from a script: per address, a list of replies used one by one
    (then 250). `drop` closes the connection at DATA for those addresses once."""

    def __init__(self, pipelining: bool = False) -> None:
        super().__init__()
        self.pipelining = pipelining
        self.rcpt_script: dict[str, list[str]] = {}
        self.data_script: dict[str, list[str]] = {}
        self.mail_reply = "250 OK"
        self.drop: set[str] = set()
        self.sessions = 0
        self.attempts: dict[str, int] = {}

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if self.mail_reply.startswith("250"):
            envelope.mail_from = address
        return self.mail_reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.attempts[address] = self.attempts.get(address, 0) + 1
            script = self.rcpt_script.get(address)
            reply = script.pop(0) if script else "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        address = envelope.rcpt_tos[0]
        with self.lock:
            if address in self.drop:
                self.drop.discard(address)
                server.transport.close()
                return "250 never seen"
            script = self.data_script.get(address)
            reply = script.pop(0) if script else "250 OK"
        if reply.startswith("250"):
            return await super().handle_DATA(server, session, envelope)
        return reply
