"""Mail `digest serve` sends itself (sign-up confirmations). A page keeps the
message in the database's mail queue and answers at once, so how long sending
takes (or whether it works) never shows in the answer's timing. A thread
sends from the queue: what the relay defers or cannot take yet waits and
goes again (after 1, 5, 15, then every 60 minutes), and what a stopped
serve left behind goes when one starts again.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from digest.config import Smtp
from digest.deliver import signup
from digest.errors import DigestError
from digest.store import Database, ledger, mailqueue
from digest.store.pool import Connections

log = logging.getLogger(__name__)

# The wait before each next try; the last repeats until the message is too old.
WAITS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1))
HOLD = timedelta(minutes=10)  # a claimed message, if its sender dies, is taken again then
POLL = 30.0  # seconds between looks at the queue (another serve's retries)


class Mailer:
    """The mail queue's sending thread. `submit` keeps a message and wakes it;
    `idle()` waits until nothing due is left (tests, stop)."""

    def __init__(self, smtp: Smtp, connections: Connections, give_up_after: timedelta) -> None:
        self.smtp, self.connections, self.give_up_after = smtp, connections, give_up_after
        self.wake = threading.Event()
        self.wake.set()  # a first round at once: what a stopped serve left behind
        self.busy = threading.Lock()  # held while a round of sending runs
        self.thread = threading.Thread(target=self._work, name="digest-serve-mail", daemon=True)
        self.thread.start()

    def submit(self, envelope_from: str, to: str, raw: bytes) -> None:
        with self.connections.connection() as db:
            mailqueue.add(db, envelope_from, to, raw)
        self.wake.set()

    def idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.busy, self.connections.connection() as db:
                if not mailqueue.due(db):
                    return
            self.wake.set()
            time.sleep(0.02)

    def _work(self) -> None:
        while True:
            self.wake.wait(POLL)
            self.wake.clear()
            with self.busy:
                try:
                    self._round()
                except Exception:  # the database away for a moment: the next round tries again
                    log.exception("digest serve: the mail queue could not be read")

    def _round(self) -> None:
        with self.connections.connection() as db:
            while queued := mailqueue.claim(db, HOLD):
                for message in queued:
                    self._send(db, message)

    def _send(self, db: Database, message: mailqueue.Queued) -> None:
        try:
            outcome = signup.send(self.smtp, message.sender, message.recipient, message.raw)
            status, reply = outcome.status, outcome.reply
        except DigestError as e:
            status, reply = ledger.DEFERRED, str(e)
        except Exception as e:  # one bad message must not end the thread for the rest
            log.exception("sign-up mail to %s failed unexpectedly", message.recipient)
            status, reply = ledger.DEFERRED, f"{type(e).__name__}: {e}"
        if status == ledger.SENT:
            mailqueue.remove(db, message.key)
            return
        made = datetime.fromisoformat(message.created_at)
        too_old = datetime.now(UTC) - made > self.give_up_after
        if status != ledger.DEFERRED or too_old:
            log.warning("sign-up mail to %s not delivered: %s", message.recipient, reply)
            mailqueue.remove(db, message.key)
            return
        wait = WAITS[min(message.attempts, len(WAITS) - 1)]
        log.warning(
            "sign-up mail to %s not sent yet (%s); trying again in %d minutes",
            message.recipient,
            reply,
            wait.total_seconds() // 60,
        )
        mailqueue.later(db, message.key, reply, wait)
