"""Unsubscribe and preference tokens: the address and an HMAC over list and
address, so a link works without any lookup and cannot be forged or moved
to another list or address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

SIGNATURE_BYTES = 18
# Long enough for any real address (254 octets) in base64url, plus the signature.
MAX_TOKEN = 400
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def list_id(title: str, sender: str, fixed: str = "") -> str:
    """The List-Id value: `fixed` (the list_id setting) when set, else the
    digest's title as a slug at the sender's domain. Tokens are signed over it."""
    if fixed:
        return fixed
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "digest"
    return f"{slug}.{sender.rsplit('@', 1)[-1]}"


def _signature(secret: bytes, list_name: str, address: bytes) -> bytes:
    mac = hmac.new(secret, list_name.encode() + b"\n" + address, hashlib.sha256)
    return mac.digest()[:SIGNATURE_BYTES]


def sign(secret: bytes, list_name: str, email: str) -> str:
    """`address.signature`, both base64url without padding."""
    address = email.lower().encode()
    return f"{_b64(address)}.{_b64(_signature(secret, list_name, address))}"


def verify(secret: bytes, list_name: str, token: str) -> str | None:
    """The (lower-case) address a token was made for, or None when it is
    malformed, signed with another key, or for another list."""
    if len(token) > MAX_TOKEN or not TOKEN_SHAPE.fullmatch(token):
        return None
    encoded_address, encoded_signature = token.split(".")
    decoded = _decoded(encoded_address, encoded_signature)
    if decoded is None:
        return None
    address, signature, email = decoded
    expected = _signature(secret, list_name, address)
    if not hmac.compare_digest(signature, expected) or "@" not in email:
        return None
    return email


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decoded(encoded_address: str, encoded_signature: str) -> tuple[bytes, bytes, str] | None:
    """(address bytes, signature, address text) of a token's parts, or None
    when either is not canonical base64 or the address is not UTF-8."""
    try:
        address = _unb64(encoded_address)
        return address, _unb64(encoded_signature), address.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _unb64(text: str) -> bytes:
    """Strict: one token has one spelling. base64 leaves slack in the low bits
    of the last character, so several strings decode to the same bytes; only
    the one `_b64` writes is accepted."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not the canonical encoding")
    return raw


CONFIRM_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[0-9]{1,12}\.[A-Za-z0-9_-]+")


def _confirm_signature(secret: bytes, list_name: str, address: bytes, issued: int) -> bytes:
    # "confirm" keeps a confirmation signature from ever passing as an
    # unsubscribe one (or the reverse), whatever the address.
    message = b"confirm\n" + list_name.encode() + b"\n" + address + b"\n" + str(issued).encode()
    return hmac.new(secret, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]


def sign_confirmation(secret: bytes, list_name: str, email: str, issued: int) -> str:
    """`address.issued.signature`: the sign-up link, for the request made at
    `issued` (Unix seconds), so it expires and a newer request replaces it."""
    address = email.lower().encode()
    signature = _confirm_signature(secret, list_name, address, issued)
    return f"{_b64(address)}.{issued}.{_b64(signature)}"


def verify_confirmation(secret: bytes, list_name: str, token: str) -> tuple[str, int] | None:
    """(address, issued) of a genuine confirmation token, else None. Whether
    it expired is the caller's decision."""
    if len(token) > MAX_TOKEN or not CONFIRM_SHAPE.fullmatch(token):
        return None
    encoded_address, issued_text, encoded_signature = token.split(".")
    decoded = _decoded(encoded_address, encoded_signature)
    if decoded is None:
        return None
    address, signature, email = decoded
    issued = int(issued_text)
    if str(issued) != issued_text:  # "0017" is not the 17 that was signed
        return None
    expected = _confirm_signature(secret, list_name, address, issued)
    if not hmac.compare_digest(signature, expected) or "@" not in email:
        return None
    return email, issued
