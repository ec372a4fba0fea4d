"""The validated settings, and the groups each stage receives.

`Settings` is what `load_settings` returns: flat, one field per setting, as
users name them. Stages never see all of it: each takes its own group
(`settings.look` for rendering, `settings.fetch` for collecting ...), so
what shapes a stage's output is exactly the fields of its group.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

G = TypeVar("G", bound=Any)


@dataclass(frozen=True)
class SourceConfig:
    """One source of a section and its options (a plain string means defaults)."""

    url: str
    name: str = ""
    kind: str = "auto"
    full_text: bool = False
    max_age_days: int | None = None
    # The language of the source's articles ("de", "fr-CA"); empty: the digest's.
    language: str = ""


@dataclass(frozen=True)
class SectionConfig:
    """A digest section: its sources and how many articles it may hold.

    `sources` holds each source's location; `options` the same sources with
    their per-source options, when the config gave any.
    """

    key: str
    title: str
    sources: tuple[str, ...] = ()
    limit: int = 5
    options: tuple[SourceConfig, ...] = ()

    @property
    def source_configs(self) -> tuple[SourceConfig, ...]:
        return self.options or tuple(SourceConfig(s) for s in self.sources)


@dataclass(frozen=True)
class Look:
    """Everything that shapes the compiled email and web pages (render)."""

    title: str = "The Digest"
    language: str = "en"
    base_url: str = "http://127.0.0.1:8089"
    brand_color: str = "#1d3557"
    accent_color: str = "#b3261e"
    logo_url: str = ""
    postal_address: str = ""
    preheader: str = ""
    footer_text: str = ""
    templates: Path | None = None
    # Where compiled emails are kept: not part of what shapes them.
    render_cache: Path | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Fetch:
    """How sources are read and what counts as new (collect)."""

    user_agent: str = "digest/0.1 (newsletter digest builder)"
    timeout: float = 20.0
    max_bytes: int = 10_000_000
    concurrency: int = 16
    per_host: int = 4
    max_age_days: int = 14
    full_text_min_chars: int = 0
    resend_edited: bool = False
    failure_threshold: int = 3


@dataclass(frozen=True)
class Smtp:
    """Where messages go: an SMTP server, or the Maildir when `host` is empty."""

    host: str = ""
    port: int = 0
    user: str = ""
    password: str = field(default="", repr=False)
    security: str = "starttls"
    # RFC 5321 4.5.3.2: five minutes for a reply, ten for the one after the message.
    timeout: float = 300.0
    data_timeout: float = 600.0
    connect_timeout: float = 30.0
    ca_file: Path | None = None
    connections: int = 4
    messages_per_connection: int = 1000
    outbox: Path = Path("outbox")

    @property
    def effective_port(self) -> int:
        """The port to dial: the explicit one, or the usual one for the mode."""
        if self.port:
            return self.port
        return {"ssl": 465, "starttls": 587, "none": 25}[self.security]

    @property
    def description(self) -> str:
        if self.host:
            return f"SMTP {self.host}:{self.effective_port} ({self.security})"
        return f"Maildir {self.outbox}"


@dataclass(frozen=True)
class Sender:
    """Who the mail is from and how its links are made (message skeleton, tokens)."""

    title: str = "The Digest"
    from_addr: str = "Digest <digest@localhost>"
    list_id: str = ""
    base_url: str = "http://127.0.0.1:8089"
    empty_note: bool = False
    bounce_address: str = ""  # empty: bounces@ the sender's domain
    verp: bool = True


@dataclass(frozen=True)
class Bounces:
    """Where delivery status notifications arrive and what they count for."""

    source: str = ""  # a Maildir, an mbox file or imaps://user@host/FOLDER
    password: str = field(default="", repr=False)
    ca_file: Path | None = None
    soft_limit: int = 3  # soft bounces in a row that suppress an address


@dataclass(frozen=True)
class Signup:
    """Sign-up with double opt-in on `digest serve`: how long a confirmation
    link lasts, and the limits that keep bots from using the form."""

    confirm_hours: int = 48
    client_limit: int = 10  # sign-ups per client address per hour
    address_limit: int = 3  # confirmation messages per address per day


@dataclass(frozen=True)
class SummaryOptions:
    """How long summaries are and, optionally, which LLM writes them."""

    sentences: int = 2  # sentences per article summary
    article_words: int = 80  # word budget per article summary; 0 means none
    key_points: bool = True
    edition_words: int = 0  # for all summaries of an edition together; 0 means none
    # Sentence splitting and stop words; an article's own language wins.
    language: str = "en"
    # The LLM adapter is used only when both base URL and model are set.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)  # never printed
    llm_timeout: float = 30.0
    llm_cache_path: Path | None = None


@dataclass(frozen=True)
class Schedule:
    """When slots are and how the runner behaves (schedule)."""

    cron: str = "0 7 * * *"
    timezone: str = "UTC"
    catch_up_minutes: int = 120
    min_articles: int = 1
    lease_seconds: int = 60
    lease_busy: str = "exit"
    local_time: bool = False  # a slot opens at its time in the earliest reader's zone


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, validated."""

    title: str = "The Digest"
    timezone: str = "UTC"
    schedule: str = "0 7 * * *"
    language: str = "en"
    sections: tuple[SectionConfig, ...] = ()
    smtp_host: str = ""
    smtp_port: int = 0
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_security: str = "starttls"
    smtp_timeout: float = 300.0
    smtp_data_timeout: float = 600.0
    smtp_connect_timeout: float = 30.0
    smtp_ca_file: Path | None = None
    smtp_connections: int = 4
    smtp_messages_per_connection: int = 1000
    rate_per_second: float = 0.0
    rate_per_hour: int = 0
    max_attempts: int = 3
    retry_delay: float = 5.0
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: Path | None = None
    dkim_canonicalization: str = "relaxed/relaxed"
    from_addr: str = "Digest <digest@localhost>"
    subscribers: Path = Path("subscribers.example.csv")
    # A SQLite file, or a postgresql:// URL (which may hold a password: not in repr).
    database: str = field(default="digest.db", repr=False)
    outbox: Path = Path("outbox")
    base_url: str = "http://127.0.0.1:8089"
    secret_key: str = field(default="", repr=False)
    list_id: str = ""
    templates: Path | None = None
    summary_sentences: int = 2
    summary_words: int = 80
    edition_words: int = 0
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = field(default="", repr=False)
    llm_timeout: float = 30.0
    llm_cache: Path | None = None
    brand_color: str = "#1d3557"
    accent_color: str = "#b3261e"
    logo_url: str = ""
    postal_address: str = ""
    preheader: str = ""
    footer_text: str = ""
    render_cache: Path | None = None
    preview_port: int = 8026
    catch_up_minutes: int = 120
    min_articles: int = 1
    lease_seconds: int = 60
    lease_busy: str = "exit"
    log_level: str = "info"
    log_format: str = "text"
    user_agent: str = "digest/0.1 (newsletter digest builder)"
    fetch_timeout: float = 20.0
    fetch_max_bytes: int = 10_000_000
    fetch_concurrency: int = 16
    fetch_per_host: int = 4
    max_age_days: int = 14
    full_text_min_chars: int = 0
    resend_edited: bool = False
    source_failure_threshold: int = 3
    serve_host: str = "127.0.0.1"
    serve_port: int = 8089
    serve_connection_limit: int = 500
    serve_idle_timeout: int = 10
    empty_note: bool = False
    confirm_hours: int = 48
    signup_client_limit: int = 10
    signup_address_limit: int = 3
    trusted_proxy: str = ""
    bounce_address: str = ""
    verp: bool = True
    bounce_source: str = ""
    bounce_password: str = field(default="", repr=False)
    bounce_ca_file: Path | None = None
    soft_bounce_limit: int = 3
    local_time: bool = False
    worker_timeout: float = 30.0
    worker_poll: float = 2.0
    config_path: Path | None = None

    @property
    def look(self) -> Look:
        return _group(Look, self)

    @property
    def fetch(self) -> Fetch:
        return _group(Fetch, self, "fetch_", failure_threshold="source_failure_threshold")

    @property
    def smtp(self) -> Smtp:
        return _group(Smtp, self, "smtp_")

    @property
    def sender(self) -> Sender:
        return _group(Sender, self)

    @property
    def bounces(self) -> Bounces:
        return _group(Bounces, self, "bounce_", soft_limit="soft_bounce_limit")

    @property
    def signup(self) -> Signup:
        return _group(Signup, self, "signup_")

    @property
    def summary(self) -> SummaryOptions:
        """The summary settings; the LLM cache sits beside the database by default."""
        return SummaryOptions(
            sentences=self.summary_sentences,
            article_words=self.summary_words,
            edition_words=self.edition_words,
            language=self.language,
            llm_base_url=self.llm_base_url or None,
            llm_model=self.llm_model or None,
            llm_api_key=self.llm_api_key or None,
            llm_timeout=self.llm_timeout,
            llm_cache_path=self.llm_cache or self.llm_cache_beside_database,
        )

    @property
    def llm_cache_beside_database(self) -> Path:
        if "://" in self.database:  # a PostgreSQL database: the working folder
            return Path("llm-cache.sqlite")
        return Path(self.database).with_name("llm-cache.sqlite")

    @property
    def schedule_group(self) -> Schedule:
        return _group(Schedule, self, cron="schedule")

    @property
    def effective_smtp_port(self) -> int:
        return self.smtp.effective_port


def _group(kind: type[G], settings: Settings, prefix: str = "", **renamed: str) -> G:
    """A stage's group from the settings: each field takes the setting of its
    own name, with `prefix` (smtp_host for Smtp.host), or as `renamed`."""
    values = {}
    for name in (f.name for f in fields(kind)):
        source = renamed.get(name) or (prefix + name if hasattr(settings, prefix + name) else name)
        values[name] = getattr(settings, source)
    group: G = kind(**values)
    return group
