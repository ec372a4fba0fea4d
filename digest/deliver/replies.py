"""What an SMTP server's answer means for one delivery: every reply is judged
by its code and by the stage it answers (RFC 5321), as Postfix judges it.
The one home of that decision; the transports only report what was said.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.store import ledger

# The stages of a session, named as in RFC 5321 (END: the reply after the final dot).
CONNECT, GREETING, EHLO, STARTTLS, AUTH = "connect", "greeting", "EHLO", "STARTTLS", "AUTH"
MAIL, RCPT, DATA, END = "MAIL", "RCPT", "DATA", "end of data"
# Stages before any message: a failure there is the session's, not a recipient's.
SESSION_STAGES = frozenset({CONNECT, GREETING, EHLO, STARTTLS, AUTH})
NEEDS_SMTPUTF8 = "needs SMTPUTF8"


@dataclass(frozen=True)
class Outcome:
    """What became of one message: a ledger status and the server's own reply.

    `throttled`: the server is struggling (421, a temporary refusal of the
    session or the sender, a timeout), so the pace drops for every connection
    to it; other temporary refusals defer only this delivery. `busy`: the
    refusal was about the server's load, not this message (421 and the like,
    not a timeout, after which the message may have arrived): it goes again
    when the pause ends, without spending one of its tries.
    """

    status: str  # ledger.SENT, DEFERRED, BOUNCED, FAILED, or PENDING (cannot go this way)
    reply: str
    throttled: bool = False
    stage: str = ""
    busy: bool = False


def plain_reply(code: int, text: bytes | str) -> str:
    """`451 4.7.1 greylisted`: the code and the server's words on one line."""
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(shown.split())}".strip()


def reply_text(stage: str, code: int, text: bytes | str) -> str:
    """The reply as the ledger keeps it, with the stage in front unless it
    answers the recipient or the message itself."""
    reply = plain_reply(code, text)
    return reply if stage in (RCPT, END) else f"{stage}: {reply}"


def judge(stage: str, code: int, text: bytes | str) -> Outcome | None:
    """The outcome a refusal means; None when the reply lets the message go on.
    A 5xx to MAIL or to the session is sender-wide: the transport raises it."""
    if code in (250, 251) or (stage == DATA and code == 354):
        sent = stage == END
        return Outcome(ledger.SENT, reply_text(stage, code, text), stage=stage) if sent else None
    reply = reply_text(stage, code, text)
    if 400 <= code < 500:
        # 421 closes the connection; a refusal of the sender or the session
        # repeats for every message: both slow the pace. A recipient's 4xx
        # (greylisting, a full mailbox) defers that delivery alone.
        throttled = code == 421 or stage in SESSION_STAGES or stage == MAIL
        return Outcome(ledger.DEFERRED, reply, throttled, stage, busy=throttled)
    if stage == RCPT:
        return Outcome(ledger.BOUNCED, reply, stage=stage)  # the address is suppressed
    # 5xx to DATA or to the message: this message failed, the address stays.
    return Outcome(ledger.FAILED, reply, stage=stage)


def lost(stage: str, timed_out: bool, seconds: float, detail: str = "") -> Outcome:
    """No reply at all: a timeout (the server is struggling: slow down) or a
    connection that dropped (tried again on a new one)."""
    if timed_out:
        what = f"timeout: no reply to {stage} within {seconds:g} s"
        if stage == CONNECT:
            what = f"timeout: no connection within {seconds:g} s"
        return Outcome(ledger.DEFERRED, what, throttled=True, stage=stage)
    reason = f" ({detail})" if detail else ""
    return Outcome(ledger.DEFERRED, f"connection lost at {stage}{reason}", stage=stage)
