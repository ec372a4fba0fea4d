"""DKIM signatures (RFC 6376; ed25519-sha256, RFC 8463) through OpenSSL: the
key, read once per send, and per message the signature over the headers RFC
8058 wants covered, with the body hash taken from the skeleton's prepared state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from digest.deliver.bodyhash import WSP_RUN
from digest.deliver.message import Message, header_safe
from digest.errors import ConfigError

RELAXED = "relaxed"
# RFC 8301: verifiers refuse RSA keys under 1024 bits; 2048 is what to use.
MIN_RSA_BITS = 1024
NEW_KEY = "make one with: openssl genrsa -out dkim.pem 2048"

# RFC 8058 wants List-Unsubscribe and List-Unsubscribe-Post under the signature.
SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"list-id", b"list-unsubscribe",
    b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip
FIELD_END = re.compile(rb"\r\n(?![ \t])")  # a CRLF that no folded line follows
LINE = 78  # RFC 5322's recommended line length


@dataclass(frozen=True)
class DkimKey:
    """A loaded signing key and how it signs: rsa-sha256 with an RSA key,
    ed25519-sha256 with an Ed25519 one; the header/body canonicalisation."""

    selector: str
    domain: str
    private_key: RSAPrivateKey | Ed25519PrivateKey = field(repr=False)
    canonicalization: str = "relaxed/relaxed"
    # Where the private-key operation runs when not here (signer.py: children).
    signer: Callable[[bytes], bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if isinstance(self.private_key, RSAPrivateKey) else b"ed25519-sha256"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature over the SHA-256 digest of the signed header data."""
        if self.signer is not None:
            return self.signer(digest)
        if isinstance(self.private_key, RSAPrivateKey):
            return self.private_key.sign(
                digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
            )
        return self.private_key.sign(digest)  # RFC 8463: Ed25519 signs the SHA-256 digest

    @property
    def relaxed_header(self) -> bool:
        return self.canonicalization.split("/")[0] == RELAXED

    @property
    def relaxed_body(self) -> bool:
        return self.canonicalization.split("/")[1] == RELAXED


def load_dkim_key(
    key_file: Path, selector: str, domain: str, canonicalization: str = "relaxed/relaxed"
) -> DkimKey:
    """Read and check the key once per send. Every problem is a ConfigError
    that names the file and never shows what is in it."""
    try:
        data = key_file.read_bytes().strip()
    except OSError as e:
        raise ConfigError(
            f"cannot read the DKIM key {key_file} ({e.strerror}); check DIGEST_DKIM_KEY_FILE"
        ) from None
    if not data:
        raise ConfigError(f"the DKIM key file {key_file} is empty; check DIGEST_DKIM_KEY_FILE")
    key = _private_key(data, key_file)
    return DkimKey(header_safe(selector), header_safe(domain), key, canonicalization)


def _private_key(data: bytes, key_file: Path) -> RSAPrivateKey | Ed25519PrivateKey:
    where = f"the DKIM key {key_file} (DIGEST_DKIM_KEY_FILE)"
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise ConfigError(
                f"{where} is encrypted; digest needs it unencrypted: openssl pkey"
                f" -in {key_file} -out {key_file.with_suffix('')}-unencrypted.pem"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise ConfigError(f"{where} is not a private key digest can read; {NEW_KEY}") from None
    else:
        key = _ed25519_seed(data, where)
    if isinstance(key, RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{where} is a {key.key_size}-bit RSA key; receivers refuse keys under "
                f"{MIN_RSA_BITS} bits (RFC 8301): {NEW_KEY}"
            )
        return key
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise ConfigError(
        f"{where} is neither an RSA nor an Ed25519 key ({type(key).__name__}); DKIM signs "
        f"with those (rsa-sha256, ed25519-sha256): {NEW_KEY}"
    )


def _ed25519_seed(data: bytes, where: str) -> Ed25519PrivateKey:
    """dkimpy's format for ed25519: the base64 of the 32-byte private seed."""
    try:
        seed = base64.b64decode(data, validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(
            f"{where} is neither a PEM private key nor the base64 of a 32-byte ed25519 "
            f"seed; {NEW_KEY}"
        )
    return Ed25519PrivateKey.from_private_bytes(seed)


def signed(message: Message, key: DkimKey | None, now: float | None = None) -> bytes:
    """The message as sent: with a DKIM-Signature on top when there is a key."""
    if key is None:
        return bytes(message)
    return dkim_signature(message, key, now) + bytes(message)


def dkim_signature(message: Message, key: DkimKey, now: float | None = None) -> bytes:
    """The DKIM-Signature header field (with its CRLF) for `message`."""
    plan = message.skeleton.digests.plan(key.relaxed_body)
    body_hash = plan.digest(message.values)
    names, hashed = _signed_fields(message.head, key.relaxed_header)
    tags = [
        b"v=1", b"a=" + key.algorithm, b"c=" + key.canonicalization.encode(),
        b"d=" + key.domain.encode(), b"s=" + key.selector.encode(),
        b"t=%d" % int(time.time() if now is None else now),
    ]  # fmt: skip
    unsigned = _fold(tags, names, b"bh=" + base64.b64encode(body_hash))
    data = hashed + _canonical(unsigned, key.relaxed_header)
    signature = key.sign_digest(hashlib.sha256(data).digest())
    return unsigned + _fold_value(base64.b64encode(signature), len(b" b=")) + b"\r\n"


def _signed_fields(head: bytes, relaxed: bool) -> tuple[list[bytes], bytes]:
    """Names for h= and the canonical signed fields: of a name that occurs
    more than once, the last instance (RFC 6376 5.4.2; h= names each once)."""
    last = {f.split(b":", 1)[0].strip().lower(): f for f in FIELD_END.split(head) if f}
    names = [name for name in SIGNED_HEADERS if name in last]
    if b"from" not in last:  # RFC 6376 5.4: From must be signed; ours always has one
        raise ValueError("a message to sign needs a From header field")
    return names, b"".join(_canonical(last[name], relaxed) + b"\r\n" for name in names)


def _canonical(header_field: bytes, relaxed: bool) -> bytes:
    """One header field without its CRLF (RFC 6376 3.4.1, 3.4.2)."""
    if not relaxed:
        return header_field
    name, value = header_field.split(b":", 1)
    value = WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" \t")
    return name.rstrip(b" \t").lower() + b":" + value


def _fold(tags: list[bytes], names: list[bytes], body_hash: bytes) -> bytes:
    """The DKIM-Signature field up to an empty b=, folded at tags (and at the
    colons of h=), with b= on a line of its own so the signature can follow."""
    atoms = [b" " + tag + b";" for tag in tags]
    atoms += [b" h=" + names[0]] + [b":" + name for name in names[1:]]
    atoms[-1] += b";"
    atoms.append(b" " + body_hash + b";")
    lines, line = [], b"DKIM-Signature:"
    for atom in atoms:
        if len(line) + len(atom) > LINE:
            lines.append(line)
            line = atom if atom.startswith(b" ") else b" " + atom
        else:
            line += atom
    return b"\r\n".join([*lines, line, b" b="])


def _fold_value(value: bytes, used: int) -> bytes:
    """A base64 value folded into lines of LINE (its whitespace is ignored)."""
    first = LINE - used
    rest = [value[at : at + LINE - 1] for at in range(first, len(value), LINE - 1)]
    return b"\r\n ".join([value[:first], *rest])
