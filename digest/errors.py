"""One error hierarchy for everything a user can get wrong or run into.

Every message says what happened, where (file, line, URL, address) and how
to fix it; the CLI prints it on one line and exits non-zero.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest raises on purpose."""

    # The process's exit status when this error ends a command (README: Exit statuses).
    exit_code = 1


class NothingNew(DigestError):
    """There is nothing to build or send; nothing was written."""

    exit_code = 3


class ConfigError(DigestError):
    """A setting is missing or invalid; the message names the setting."""


class SourceError(DigestError):
    """A source could not be read; the message names the file or URL."""


class SubscriberError(DigestError):
    """The subscriber list could not be read at all."""


class EditionError(DigestError):
    """An edition file is missing, malformed, or does not fit the config."""


class RenderError(DigestError):
    """A template failed to render or compile."""


class DeliveryError(DigestError):
    """A sender-wide failure: the send stops and the rest stays pending."""


class StoreError(DigestError):
    """The database could not be opened or is in an unexpected state."""


class LeaseHeld(StoreError):
    """Another live process holds the runner lease."""


class SummaryError(DigestError):
    """Summaries could not be made: a bad input row or a misconfigured LLM."""


class SignupError(DigestError):
    """A sign-up to ask for again: the message says what to fix in the form."""


class TooManyRequests(SignupError):
    """A client over its sign-up limit (DIGEST_SIGNUP_CLIENT_LIMIT an hour)."""
