"""What makes two collected items the same article: a GUID (per source), a
canonical URL (no tracking parameters, no fragment) and a hash of the text.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from urllib.parse import unquote, urlsplit, urlunsplit

from digest.model import Article

# Query parameters that only say where a click came from; the page is the same.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid"}
    | {"_hsenc", "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "wt_mc"}
)
TRACKING_PREFIXES = ("utm_", "pk_", "ga_")
DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=8192)
def canonical_url(url: str) -> str:
    """The URL with its scheme and host lower-cased, the default port, the
    fragment and tracking parameters removed; other URLs come back trimmed."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return text
    host = parts.hostname.lower()
    if port and port != DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    # Segments are kept verbatim: re-encoding could change what the server sees.
    query = "&".join(p for p in parts.query.split("&") if p and not _tracking(p))
    canonical = urlunsplit((scheme, host, parts.path or "/", query, ""))
    # Space before a dropped fragment now ends the URL: a second pass would
    # trim it, so this one does (canonical URLs are idempotent; a property test).
    return canonical if canonical == canonical.rstrip() else canonical_url(canonical)


def _tracking(segment: str) -> bool:
    key = unquote(segment.split("=", 1)[0]).lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def content_hash(title: str, text: str) -> str:
    """A hash of the words, blind to case and spacing, so re-wrapping is no edit."""
    normal = " ".join(f"{title}\n{text}".split()).lower()
    return hashlib.sha256(normal.encode()).hexdigest()[:32]


def article_hash(article: Article) -> str:
    # The standfirst is left out: feeds carrying one story disagree on it most.
    return content_hash(article.title, article.text or article.standfirst)


def identity_keys(article: Article, source: str, guid: str = "") -> list[str]:
    """Lookup keys, strongest first: GUID (scoped to its source, since many
    feeds number their items 1, 2, 3), URL (readers make it canonical), hash."""
    keys = [f"guid:{source} {guid}"] if guid else []
    if article.url:
        keys.append(f"url:{article.url}")
    keys.append(f"hash:{article_hash(article)}")
    return keys


def article_id(source: str, url: str, guid: str = "") -> str:
    """A stable id: from the (canonical) URL when there is one, else the GUID."""
    basis = f"url:{url}" if url else f"guid:{source} {guid}"
    return hashlib.sha256(basis.encode()).hexdigest()[:16]
