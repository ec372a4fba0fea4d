"""Mail `digest serve` sends itself (sign-up confirmations), handed to the
transport by one background thread. The page answers before the mail goes
out, so how long sending takes (or whether anything is sent) never shows in
the answer's timing.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from digest.config import Smtp
from digest.deliver import signup
from digest.errors import DigestError
from digest.store import ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    envelope_from: str
    to: str
    raw: bytes


class Mailer:
    """A queue and the thread that empties it; `idle()` waits for it (tests, stop)."""

    def __init__(self, smtp: Smtp) -> None:
        self.smtp = smtp
        self.queue: queue.Queue[Outgoing] = queue.Queue()
        self.thread = threading.Thread(target=self._work, name="digest-serve-mail", daemon=True)
        self.thread.start()

    def submit(self, envelope_from: str, to: str, raw: bytes) -> None:
        self.queue.put(Outgoing(envelope_from, to, raw))

    def idle(self) -> None:
        self.queue.join()

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                outcome = signup.send(self.smtp, item.envelope_from, item.to, item.raw)
                if outcome.status != ledger.SENT:
                    log.warning("sign-up mail to %s not delivered: %s", item.to, outcome.reply)
            except DigestError as e:
                log.warning("sign-up mail to %s not sent: %s", item.to, e)
            except Exception:  # one bad message must not end the thread for the rest
                log.exception("sign-up mail to %s failed unexpectedly", item.to)
            finally:
                self.queue.task_done()
