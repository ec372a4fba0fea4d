"""DKIM signatures (RFC 6376) for outgoing messages: the key, read once per
send, and the signature over the headers RFC 8058 wants covered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dkim

from digest.deliver.message import header_safe
from digest.errors import ConfigError


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key: rsa-sha256 for a PEM key, ed25519-sha256 otherwise."""

    selector: str
    domain: str
    private_key: bytes = field(repr=False)

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if b"-----BEGIN" in self.private_key else b"ed25519-sha256"


# RFC 8058 wants List-Unsubscribe and List-Unsubscribe-Post under the signature.
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip


def load_dkim_key(key_file: Path, selector: str, domain: str) -> DkimKey:
    """Read the key once per send; a missing or empty file is a ConfigError."""
    try:
        key = key_file.read_bytes().strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read the DKIM key {key_file} ({e.strerror}); check DIGEST_DKIM_KEY_FILE"
        ) from None
    if not key:
        raise ConfigError(f"the DKIM key file {key_file} is empty; check DIGEST_DKIM_KEY_FILE")
    return DkimKey(header_safe(selector), header_safe(domain), key)


def dkim_sign(message: bytes, key: DkimKey) -> bytes:
    """Prepend a DKIM-Signature; the body hash is per message (it holds personal links)."""
    try:
        signature = dkim.sign(
            message,
            key.selector.encode(),
            key.domain.encode(),
            key.private_key,
            signature_algorithm=key.algorithm,
            include_headers=list(SIGNED_HEADERS),
        )
    except ImportError:
        raise ConfigError(
            "DKIM ed25519 signing needs PyNaCl: pip install 'digest[ed25519]', "
            "or use an RSA key (PEM) in DIGEST_DKIM_KEY_FILE"
        ) from None
    except (dkim.DKIMException, ValueError) as e:
        raise ConfigError(
            f"DKIM signing failed ({e}); check DIGEST_DKIM_KEY_FILE holds a valid private key"
        ) from None
    return bytes(signature) + message
