"""Settings: defaults, then digest.toml, then the environment, then flags.

Loaded and validated once by the CLI and passed down; no other module reads
the environment. An invalid value is a ConfigError that names the setting.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from digest.config import values as v
from digest.config.settings import SectionConfig, Settings, SourceConfig
from digest.errors import ConfigError

SOURCE_KINDS = ("auto", "feed", "page")
SOURCE_KEYS = ("url", "name", "kind", "full_text", "max_age_days", "language")
SECTION_KEYS = ("key", "title", "sources", "limit")


SPEC: dict[str, tuple[str, Callable[[str], Any]]] = {
    "title": ("DIGEST_TITLE", v.as_str),
    "timezone": ("DIGEST_TIMEZONE", v.as_timezone),
    "schedule": ("DIGEST_SCHEDULE", v.as_cron),
    "language": ("DIGEST_LANGUAGE", v.as_language),
    "smtp_host": ("DIGEST_SMTP_HOST", v.as_str),
    "smtp_port": ("DIGEST_SMTP_PORT", v.as_port),
    "smtp_user": ("DIGEST_SMTP_USER", v.as_str),
    "smtp_password": ("DIGEST_SMTP_PASSWORD", str),
    "smtp_security": ("DIGEST_SMTP_SECURITY", v.as_security),
    "smtp_timeout": ("DIGEST_SMTP_TIMEOUT", v.as_seconds),
    "smtp_data_timeout": ("DIGEST_SMTP_DATA_TIMEOUT", v.as_seconds),
    "smtp_connect_timeout": ("DIGEST_SMTP_CONNECT_TIMEOUT", v.as_seconds),
    "smtp_ca_file": ("DIGEST_SMTP_CA_FILE", v.as_path),
    "smtp_connections": ("DIGEST_SMTP_CONNECTIONS", v.as_positive),
    "smtp_messages_per_connection": ("DIGEST_SMTP_MESSAGES_PER_CONNECTION", v.as_positive),
    "rate_per_second": ("DIGEST_RATE_PER_SECOND", v.as_rate),
    "rate_per_hour": ("DIGEST_RATE_PER_HOUR", v.as_count),
    "max_attempts": ("DIGEST_MAX_ATTEMPTS", v.as_positive),
    "retry_delay": ("DIGEST_RETRY_DELAY", v.as_rate),
    "dkim_selector": ("DIGEST_DKIM_SELECTOR", v.as_str),
    "dkim_domain": ("DIGEST_DKIM_DOMAIN", v.as_str),
    "dkim_key_file": ("DIGEST_DKIM_KEY_FILE", v.as_path),
    "dkim_canonicalization": ("DIGEST_DKIM_CANONICALIZATION", v.as_canonicalization),
    "from_addr": ("DIGEST_FROM", v.as_str),
    "subscribers": ("DIGEST_SUBSCRIBERS", v.as_path),
    "database": ("DIGEST_DATABASE", v.as_database),
    "outbox": ("DIGEST_OUTBOX", v.as_path),
    "base_url": ("DIGEST_BASE_URL", v.as_base_url),
    "secret_key": ("DIGEST_SECRET_KEY", str),
    "list_id": ("DIGEST_LIST_ID", v.as_list_id),
    "templates": ("DIGEST_TEMPLATES", v.as_path),
    "summary_sentences": ("DIGEST_SUMMARY_SENTENCES", v.as_positive),
    "summary_words": ("DIGEST_SUMMARY_WORDS", v.as_count),
    "edition_words": ("DIGEST_EDITION_WORDS", v.as_count),
    "llm_base_url": ("DIGEST_LLM_BASE_URL", v.as_str),
    "llm_model": ("DIGEST_LLM_MODEL", v.as_str),
    "llm_api_key": ("DIGEST_LLM_API_KEY", str),
    "llm_timeout": ("DIGEST_LLM_TIMEOUT", v.as_float),
    "llm_cache": ("DIGEST_LLM_CACHE", v.as_path),
    "brand_color": ("DIGEST_BRAND_COLOR", v.as_color),
    "accent_color": ("DIGEST_ACCENT_COLOR", v.as_color),
    "logo_url": ("DIGEST_LOGO_URL", v.as_web_url),
    "postal_address": ("DIGEST_POSTAL_ADDRESS", v.as_str),
    "preheader": ("DIGEST_PREHEADER", v.as_str),
    "footer_text": ("DIGEST_FOOTER_TEXT", v.as_str),
    "render_cache": ("DIGEST_RENDER_CACHE", v.as_path),
    "preview_port": ("DIGEST_PREVIEW_PORT", v.as_port),
    "catch_up_minutes": ("DIGEST_CATCH_UP_MINUTES", v.as_minutes),
    "min_articles": ("DIGEST_MIN_ARTICLES", v.as_positive),
    "lease_seconds": ("DIGEST_LEASE_SECONDS", v.as_positive),
    "lease_busy": ("DIGEST_LEASE_BUSY", v.choice("exit", "wait")),
    "log_level": ("DIGEST_LOG_LEVEL", v.choice("debug", "info", "warning", "error")),
    "log_format": ("DIGEST_LOG_FORMAT", v.choice("text", "json")),
    "user_agent": ("DIGEST_USER_AGENT", v.as_str),
    "fetch_timeout": ("DIGEST_FETCH_TIMEOUT", v.as_seconds),
    "fetch_max_bytes": ("DIGEST_FETCH_MAX_BYTES", v.as_positive),
    "fetch_concurrency": ("DIGEST_FETCH_CONCURRENCY", v.as_positive),
    "fetch_per_host": ("DIGEST_FETCH_PER_HOST", v.as_positive),
    "max_age_days": ("DIGEST_MAX_AGE_DAYS", v.as_positive),
    "full_text_min_chars": ("DIGEST_FULL_TEXT_MIN_CHARS", v.as_count),
    "resend_edited": ("DIGEST_RESEND_EDITED", v.as_bool),
    "source_failure_threshold": ("DIGEST_SOURCE_FAILURE_THRESHOLD", v.as_positive),
    "serve_host": ("DIGEST_SERVE_HOST", v.as_str),
    "serve_port": ("DIGEST_SERVE_PORT", v.as_port),
    "serve_connection_limit": ("DIGEST_SERVE_CONNECTION_LIMIT", v.as_positive),
    "serve_idle_timeout": ("DIGEST_SERVE_IDLE_TIMEOUT", v.as_positive),
    "empty_note": ("DIGEST_EMPTY_NOTE", v.as_bool),
    "confirm_hours": ("DIGEST_CONFIRM_HOURS", v.as_positive),
    "signup_client_limit": ("DIGEST_SIGNUP_CLIENT_LIMIT", v.as_positive),
    "signup_address_limit": ("DIGEST_SIGNUP_ADDRESS_LIMIT", v.as_positive),
    "trusted_proxy": ("DIGEST_TRUSTED_PROXY", v.as_str),
    "bounce_address": ("DIGEST_BOUNCE_ADDRESS", v.as_address),
    "verp": ("DIGEST_VERP", v.as_bool),
    "bounce_source": ("DIGEST_BOUNCE_SOURCE", v.as_str),
    "bounce_password": ("DIGEST_BOUNCE_PASSWORD", str),
    "bounce_ca_file": ("DIGEST_BOUNCE_CA_FILE", v.as_path),
    "soft_bounce_limit": ("DIGEST_SOFT_BOUNCE_LIMIT", v.as_positive),
    "local_time": ("DIGEST_LOCAL_TIME", v.as_bool),
    "worker_timeout": ("DIGEST_WORKER_TIMEOUT", v.as_seconds),
    "worker_poll": ("DIGEST_WORKER_POLL", v.as_seconds),
}

SECRETS = frozenset({"smtp_password", "secret_key", "llm_api_key", "bounce_password"})
# HMAC-SHA256 keys shorter than the hash add nothing but guessability.
MIN_SECRET_BYTES = 32


def load_settings(
    config_path: Path | None = None,
    env_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read every layer in order of precedence and validate the result.

    `environ` defaults to the process environment merged over `env_file`
    (`.env` in the working directory when it exists); tests pass their own.
    """
    path = config_path or _default_config()
    toml = _read_toml(path) if path else {}
    values: dict[str, Any] = {}
    for name, raw in toml.get("digest", {}).items():
        values[name] = _parse(name, raw, f"{path} [digest]")
    env = dict(environ) if environ is not None else _environment(env_file)
    for name, (var, _parser) in SPEC.items():
        if env.get(var, "") != "":
            values[name] = _parse(name, env[var], f"environment variable {var}")
    for name, raw in (overrides or {}).items():
        if raw is not None:
            values[name] = _parse(name, raw, f"command-line option --{name.replace('_', '-')}")
    base = path.parent if path else Path.cwd()
    sections = _sections(toml.get("sections", []), base, path)
    return _finish(Settings(**values, sections=sections, config_path=path))


def _default_config() -> Path | None:
    candidate = Path("digest.toml")
    return candidate if candidate.is_file() else None


def _environment(env_file: Path | None) -> dict[str, str]:
    file = env_file or Path(".env")
    merged: dict[str, str] = {}
    if file.is_file():
        merged.update({k: v or "" for k, v in dotenv_values(file).items()})
    elif env_file is not None:
        raise ConfigError(f"env file {env_file} does not exist; check the --env-file path")
    merged.update(os.environ)
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist; check --config") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from e


def _parse(name: str, raw: Any, origin: str) -> Any:
    if name not in SPEC:
        raise ConfigError(f"unknown setting {name!r} in {origin}; {_suggestion(name)}")
    var, parser = SPEC[name]
    try:
        return parser(raw)
    except (ValueError, TypeError) as e:
        shown = "<hidden>" if name in SECRETS else repr(v.without_password(str(raw)))
        raise ConfigError(f"setting {name} ({var}) from {origin}: {shown} {e}") from e


def _suggestion(name: str) -> str:
    """The closest known name, rather than a list of every setting."""
    close = difflib.get_close_matches(name.lower().replace("-", "_"), SPEC, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "the README's Settings table lists every setting"


def _sections(raw: Any, base: Path, path: Path | None) -> tuple[SectionConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: [[sections]] must be an array of tables")
    sections = []
    for index, table in enumerate(raw, start=1):
        where = f"{path} section #{index}"
        if not isinstance(table, dict) or not table.get("key"):
            raise ConfigError(f"{where}: every [[sections]] entry needs a 'key'")
        unknown = sorted(set(table) - set(SECTION_KEYS))
        if unknown:  # a misspelt 'sources' would leave the section silently empty
            known = ", ".join(SECTION_KEYS)
            raise ConfigError(f"{where}: unknown section option {unknown[0]!r}; known: {known}")
        sources = table.get("sources", [])
        if not isinstance(sources, list):
            raise ConfigError(f"{where}: 'sources' must be a list of paths or URLs")
        limit = table.get("limit", 5)
        if not isinstance(limit, int) or limit < 1:
            raise ConfigError(f"{where}: 'limit' must be a whole number of 1 or more")
        options = tuple(_source(s, base, f"{where} source #{n}") for n, s in enumerate(sources, 1))
        title = str(table.get("title") or table["key"])
        locations = tuple(o.url for o in options)
        sections.append(SectionConfig(str(table["key"]), title, locations, limit, options))
    return tuple(sections)


def _source(raw: Any, base: Path, where: str) -> SourceConfig:
    """A source given as a string, or as an inline table with options."""
    if isinstance(raw, str):
        return SourceConfig(_resolve_source(raw, base))
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a source is a path, a URL or a table with 'url'")
    unknown = sorted(set(raw) - set(SOURCE_KEYS))
    if unknown:
        known = ", ".join(SOURCE_KEYS)
        raise ConfigError(f"{where}: unknown source option {unknown[0]!r}; known: {known}")
    url, kind, age = raw.get("url"), raw.get("kind", "auto"), raw.get("max_age_days")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: 'url' must be a path or URL, e.g. url = \"feed.xml\"")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: 'kind' must be one of {', '.join(SOURCE_KINDS)}")
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or age < 1):
        raise ConfigError(f"{where}: 'max_age_days' must be a whole number of 1 or more")
    full_text = raw.get("full_text", False)
    if not isinstance(full_text, bool):
        raise ConfigError(f"{where}: 'full_text' must be true or false")
    name = str(raw.get("name") or "")
    language = raw.get("language", "")
    if not isinstance(language, str) or not v.LANGUAGE.fullmatch(language or "en"):
        raise ConfigError(f'{where}: \'language\' must be a code such as "de" or "pt-BR"')
    path = _resolve_source(url.strip(), base)
    return SourceConfig(path, name, kind, full_text, age, language)


def _resolve_source(source: str, base: Path) -> str:
    if "://" in source:
        return source
    candidate = Path(source).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


def _finish(settings: Settings) -> Settings:
    keys = [s.key for s in settings.sections]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigError(f"section keys must be unique; repeated: {', '.join(duplicates)}")
    if settings.smtp_user and not settings.smtp_password:
        raise ConfigError("DIGEST_SMTP_USER is set but DIGEST_SMTP_PASSWORD is empty; set both")
    if settings.smtp_user and settings.smtp_security == "none" and not _local(settings):
        raise ConfigError(
            f"DIGEST_SMTP_SECURITY=none would send the password to {settings.smtp_host} in "
            "clear; use starttls or ssl, or a relay on this machine (127.0.0.1)"
        )
    if settings.secret_key and len(settings.secret_key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"DIGEST_SECRET_KEY is {len(settings.secret_key.encode())} bytes; it must be at "
            f"least {MIN_SECRET_BYTES} (make one with: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), or leave it empty to have one generated"
        )
    if settings.dkim_key_file and not settings.dkim_selector:
        raise ConfigError(
            "DIGEST_DKIM_KEY_FILE is set but DIGEST_DKIM_SELECTOR is empty; set the selector "
            "published in DNS as SELECTOR._domainkey.DOMAIN"
        )
    return settings


def _local(settings: Settings) -> bool:
    """No SMTP host (the Maildir), or a relay on this machine: `localhost` or
    a loopback address, never a name that only starts like one (127.evil.example)."""
    return not settings.smtp_host or is_loopback(settings.smtp_host)


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def setting_names() -> list[str]:
    """Every setting a user can set, for help texts and the README check."""
    return [f.name for f in fields(Settings) if f.name in SPEC]
