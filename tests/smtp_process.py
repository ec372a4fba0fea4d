"""An aiosmtpd server in its own process, for the crash test and benchmarks.

Run as `python tests/smtp_process.py PORT_FILE [--count DB] [--tls CERT KEY]
[--auth USER:PASSWORD] [--port N]`: it binds 127.0.0.1 port 0 (or shares
port N with another such process), writes the port to PORT_FILE, and with
--count records each message's recipient and Message-ID in a SQLite file
(committed before the 250 reply, so a count is never lost).
"""

from __future__ import annotations

import argparse
import re
import signal
import sqlite3
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class CountingHandler:
    def __init__(self, count_db: Path | None) -> None:
        self.db = None
        if count_db is not None:
            self.db = sqlite3.connect(count_db, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=OFF")  # only the sender is killed
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS received (rcpt TEXT, message_id TEXT, at REAL)"
            )
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.db is not None:
            found = MESSAGE_ID.search(envelope.content)
            mid = found.group(1).decode() if found else ""
            with self.lock:
                at = time.time()  # for rates measured at the server
                self.db.executemany(
                    "INSERT INTO received VALUES (?, ?, ?)",
                    [(rcpt, mid, at) for rcpt in envelope.rcpt_tos],
                )
        return "250 OK"


class PortZero(Controller):
    """Binds with SO_REUSEPORT, so a second process can share the port (the
    kernel spreads connections): one Python process is a single-core server."""

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker,
            host=self.hostname,
            port=self.port,
            ssl=self.ssl_context,
            reuse_port=True,
        )

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        # With a shared port the kernel may hand the probe to the other process:
        # probe until one reaches this one.
        for _ in range(100):
            super()._trigger_server()
            if self._factory_invoked.wait(0.05):
                return


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port_file", type=Path)
    parser.add_argument("--count", type=Path)
    parser.add_argument("--port", type=int, default=0, help="share this port (SO_REUSEPORT)")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {}
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.tls)
        kwargs.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def check(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> AuthResult:
            ok = data.login == user.encode() and data.password == password.encode()
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=check, auth_required=True)
    controller = PortZero(
        CountingHandler(args.count),
        hostname="127.0.0.1",
        port=args.port,
        data_size_limit=10_000_000,
        **kwargs,
    )
    controller.start()
    args.port_file.with_suffix(".tmp").write_text(str(controller.port))
    args.port_file.with_suffix(".tmp").rename(args.port_file)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    # Blocked before the server thread starts, so only sigwait() sees them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main(sys.argv[1:])
