"""Parsers for setting values: each takes the raw text (from digest.toml, the
environment or a flag) and returns the typed value, or raises ValueError with
the end of a sentence that config.py prefixes with the setting's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config.cron import crontab_trigger

SECURITY_MODES = ("starttls", "ssl", "none")
# A BCP 47 language tag, loosely: "en", "de-AT", "pt_BR", "zh-Hant-TW".
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*")


def as_int(value: str) -> int:
    return int(str(value).strip())


def as_float(value: str) -> float:
    return float(str(value).strip())


def as_str(value: str) -> str:
    return str(value).strip()


def as_language(value: str) -> str:
    code = str(value).strip()
    if not LANGUAGE.fullmatch(code):
        raise ValueError('must be a language code such as "en", "de" or "pt-BR"')
    return code


def as_path(value: str) -> Path:
    return Path(str(value).strip()).expanduser()


def without_password(text: str) -> str:
    """A URL as it may be shown: `user:secret@` becomes `user:***@`."""
    return re.sub(r"(://[^/@:\s]*):[^/@\s]*@", r"\1:***@", text)


def as_database(value: str) -> str:
    """A SQLite file's path, or a postgresql:// URL (its password never shown)."""
    text = str(value).strip()
    if "://" not in text:
        return str(as_path(text))
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"is a {scheme}:// URL; use a file path (SQLite) or a postgresql:// URL")
    return text


def as_security(value: str) -> str:
    mode = str(value).strip().lower()
    if mode not in SECURITY_MODES:
        raise ValueError(f"must be one of {', '.join(SECURITY_MODES)}")
    return mode


def as_canonicalization(value: str) -> str:
    """DKIM's c= as HEADER/BODY. A lone word is refused: in c= it would
    mean WORD/simple, which nobody guesses."""
    parts = str(value).strip().lower().split("/")
    if len(parts) != 2 or not set(parts) <= {"simple", "relaxed"}:
        raise ValueError("must be HEADER/BODY, each simple or relaxed (such as relaxed/relaxed)")
    return "/".join(parts)


def as_timezone(value: str) -> str:
    name = str(value).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError("is not an IANA time zone such as Europe/Berlin") from e
    return name


def as_port(value: str) -> int:
    port = as_int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be between 1 and 65535")
    return port


def as_count(value: str) -> int:
    number = as_int(value)
    if number < 0:
        raise ValueError("must be 0 (no limit) or more")
    return number


def as_color(value: str) -> str:
    colour = str(value).strip()
    if not re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", colour):
        raise ValueError("must be a hex colour such as #1d3557")
    return colour.lower()


def as_list_id(value: str) -> str:
    """A List-Id (RFC 2919): a label, a dot, a domain; empty keeps the derived one."""
    list_id = str(value).strip().lower()
    if list_id and not re.fullmatch(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+", list_id):
        raise ValueError("must look like weekly.news.example.org (letters, digits, - and dots)")
    return list_id


def as_address(value: str) -> str:
    """A bare mailbox for the SMTP envelope (the bounce address): ASCII, no
    name, no '+' (VERP adds one), nothing a MAIL FROM could not carry."""
    address = str(value).strip()
    if address and not re.fullmatch(r"[A-Za-z0-9._=-]{1,48}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", address):
        raise ValueError(
            "must be a plain address such as bounces@news.example.org (ASCII letters, "
            "digits, '.', '_', '-' and '=' before the @; no '+', which VERP adds)"
        )
    return address


def as_web_url(value: str) -> str:
    url = str(value).strip()
    if url and not re.match(r"https?://[^\s\"'<>]+$", url):
        raise ValueError("must be an absolute http(s) URL without spaces or quotes")
    return url


def as_base_url(value: str) -> str:
    """The public address in links and the List-Unsubscribe header: nothing
    in it may end the header (CR, LF) or need encoding there."""
    url = as_web_url(value)
    if not url or not url.isascii() or not url.isprintable():
        raise ValueError(
            "must be an absolute http(s) URL in ASCII (punycode for a non-ASCII host), "
            "such as https://news.example.org"
        )
    return url


def as_positive(value: str) -> int:
    number = as_int(value)
    if number < 1:
        raise ValueError("must be 1 or more")
    return number


def choice(*options: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        chosen = str(value).strip().lower()
        if chosen not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return chosen

    return parse


def as_cron(value: str) -> str:
    expression = " ".join(str(value).split())
    trigger = crontab_trigger(expression, "UTC")  # raises ValueError naming the bad field
    if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise ValueError("never names a day that exists (such as 31 February)")
    return expression


def as_minutes(value: str) -> int:
    number = as_int(value)
    if number < 0:
        raise ValueError("must be 0 or more minutes")
    return number


def as_bool(value: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def as_seconds(value: str) -> float:
    seconds = as_float(value)
    if seconds <= 0:
        raise ValueError("must be a number of seconds above 0")
    return seconds


def as_rate(value: str) -> float:
    number = as_float(value)
    if not number >= 0:
        raise ValueError("must be 0 (no limit) or more")
    return number


# setting name -> (environment variable, parser). digest.toml uses the setting
# name as key in its [digest] table; flags use it too.
