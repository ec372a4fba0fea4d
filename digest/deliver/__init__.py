"""Deliver: who gets what (one place), the message skeleton, DKIM, the fan-out
to the ledger, the ledger-first send loop, its pool and pacing, and the
transports (SMTP, Maildir)."""

from digest.deliver.audience import Audience, Copy, Variants, copies
from digest.deliver.fanout import FanOut, fan_out
from digest.deliver.message import MessageSkeleton, render_message, sender_address
from digest.deliver.policy import policy_from
from digest.deliver.send import DeliveryReport, Policy, Progress, deliver
from digest.deliver.transports import Outcome, Transport, make_transport

__all__ = [
    "Audience",
    "Copy",
    "DeliveryReport",
    "FanOut",
    "MessageSkeleton",
    "Outcome",
    "Policy",
    "Progress",
    "Transport",
    "Variants",
    "copies",
    "deliver",
    "fan_out",
    "make_transport",
    "policy_from",
    "render_message",
    "sender_address",
]
