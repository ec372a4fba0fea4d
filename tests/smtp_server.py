"""A real SMTP server for tests: aiosmtpd bound to port 0 on loopback, with
scripted replies per address and faults injected at any stage of a session
(greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, end of data)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, AnyStr

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

STAGES = ("greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "end")


@dataclass(frozen=True)
class Fault:
    """What the server does at a stage instead of answering normally."""

    reply: str = ""  # the answer ("" keeps the normal one)
    close: bool = False  # close the connection right after the answer
    hang: float = 0.0  # seconds of silence first: a timeout for a client that waits less


class Faults:
    """Faults per stage, and per address for RCPT, DATA and end of data; each
    used once, in order. `busy` makes a stage fail every time until a moment."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[Fault]] = {}
        self.windows: dict[str, tuple[float, Fault]] = {}
        self.used: list[tuple[str, str]] = []  # (stage, reply) of each fault used
        self.lock = threading.Lock()

    def add(self, stage: str, *faults: Fault, address: str = "") -> None:
        assert stage in STAGES, stage
        with self.lock:
            self.script.setdefault((stage, address), []).extend(faults)

    def busy(self, stage: str, fault: Fault, seconds: float) -> None:
        with self.lock:
            self.windows[stage] = (time.monotonic() + seconds, fault)

    def take(self, stage: str, address: str = "") -> Fault | None:
        with self.lock:
            until, fault = self.windows.get(stage, (0.0, Fault()))
            if time.monotonic() >= until:
                queue = self.script.get((stage, address)) or self.script.get((stage, ""))
                if not queue:
                    return None
                fault = queue.pop(0)
            self.used.append((stage, fault.reply))
            return fault


class FaultySMTP(SMTP):
    """aiosmtpd's session, consulting `faults` before each stage's answer."""

    def __init__(self, handler: Any, faults: Faults, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.faults = faults
        self.gone = False
        self.greeted = False

    async def push(self, status: AnyStr) -> None:
        if self.gone:
            return  # closed by a fault: nothing more goes out
        if not self.greeted:
            self.greeted = True
            if await self._fault("greeting"):
                return
        await super().push(status)

    async def _fault(self, stage: str, address: str = "") -> bool:
        """Apply a scripted fault; True when it answered (or closed) in place."""
        fault = self.faults.take(stage, address)
        if fault is None:
            return False
        if fault.hang:
            await asyncio.sleep(fault.hang)
        if fault.reply:
            await SMTP.push(self, fault.reply)
        if fault.close:
            self.gone = True
            assert self.transport is not None
            self.transport.close()
        return bool(fault.reply or fault.close)

    async def smtp_EHLO(self, hostname: str) -> None:
        if not (self.gone or await self._fault("EHLO")):
            await super().smtp_EHLO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if not (self.gone or await self._fault("STARTTLS")):
            await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        if not (self.gone or await self._fault("AUTH")):
            await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not (self.gone or await self._fault("MAIL")):
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        found = re.search(r"<([^>]*)>", arg or "")
        if not (self.gone or await self._fault("RCPT", found.group(1) if found else "")):
            await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if not (self.gone or await self._fault("DATA", self._first_recipient())):
            await super().smtp_DATA(arg)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "DATA" and await self._fault("end", self._first_recipient()):
            return "250 never seen"  # answered (or closed) by the fault already
        return await super()._call_handler_hook(command, *args)

    def _first_recipient(self) -> str:
        envelope = self.envelope
        return str(envelope.rcpt_tos[0]) if envelope is not None and envelope.rcpt_tos else ""


class PortZeroController(Controller):
    """aiosmtpd's Controller, learning the port the kernel picked for port 0;
    with `faults`, its sessions are FaultySMTP."""

    def __init__(self, handler: Any, faults: Faults | None = None, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.faults = faults

    def factory(self) -> SMTP:
        if self.faults is None:
            return super().factory()
        return FaultySMTP(self.handler, self.faults, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def serving(
    handler: Any, faults: Faults | None = None, **kwargs: Any
) -> Iterator[PortZeroController]:
    """A real SMTP server on 127.0.0.1, on a port the kernel picks, for a block."""
    controller = PortZeroController(handler, faults, hostname="127.0.0.1", port=0, **kwargs)
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


class GreylistHandler(ScriptedHandler):
    """Refuses each address it has not seen for `seconds` with 451, as a
    greylisting server does, then takes it."""

    def __init__(self, seconds: float, pipelining: bool = False) -> None:
        super().__init__(pipelining)
        self.seconds = seconds
        self.first_seen: dict[str, float] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        now = time.monotonic()
        with self.lock:
            first = self.first_seen.setdefault(address, now)
        if now - first < self.seconds:
            return "451 4.7.1 Greylisted, please try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)
