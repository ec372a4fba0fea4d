"""The child process of digest/deliver/signer.py: reads a private key (its
length in 4 bytes, then PEM) from stdin, then answers each 32-byte SHA-256
digest with its signature, until stdin closes. Imports nothing of digest.
"""

from __future__ import annotations

import os
import signal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

DIGEST = 32


def read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes, or fewer only at the end of the input."""
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def main() -> None:
    # A stop signal is the parent's to handle (it finishes the messages in
    # flight, which need their signatures); this child ends when stdin closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    length = int.from_bytes(read_exactly(0, 4), "big")
    key = serialization.load_pem_private_key(read_exactly(0, length), password=None)
    if not isinstance(key, RSAPrivateKey | Ed25519PrivateKey):
        raise SystemExit(2)
    prehashed = utils.Prehashed(hashes.SHA256())
    while len(digest := read_exactly(0, DIGEST)) == DIGEST:
        if isinstance(key, RSAPrivateKey):
            signature = key.sign(digest, padding.PKCS1v15(), prehashed)
        else:
            signature = key.sign(digest)
        os.write(1, signature)


if __name__ == "__main__":
    main()
