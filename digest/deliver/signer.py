"""RSA signatures in child processes for the length of a send. OpenSSL signs
with RSA-2048 in about 0.2 ms but holds the interpreter (the GIL) meanwhile,
as long as all the rest of a message's work; in a child it runs on another
core while the pool's worker waits with the GIL released. The key travels
over a pipe, never through arguments, the environment or a file.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from digest.deliver.dkim import DkimKey
from digest.deliver.signer_child import read_exactly
from digest.errors import DeliveryError

log = logging.getLogger(__name__)
CHILD = Path(__file__).with_name("signer_child.py")
MAX_CHILDREN = 16


class SigningProcesses:
    """Up to `count` child processes holding one RSA key, started as signing
    needs them (the first at once); `sign` is safe from any thread and takes
    whichever child is free."""

    def __init__(self, key: RSAPrivateKey, count: int) -> None:
        self.pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.size = (key.key_size + 7) // 8
        self.count = count
        self.children: list[subprocess.Popen[bytes]] = []
        self.idle: queue.Queue[subprocess.Popen[bytes]] = queue.Queue()
        self.lock = threading.Lock()
        try:
            self.idle.put(self._start())  # fails here, not mid-send, if none can start
        except BaseException:
            self.close()
            raise

    def sign(self, digest: bytes) -> bytes:
        """The signature over a SHA-256 digest, from a free child."""
        child = self._take()
        try:
            self._write(child, digest)
            assert child.stdout is not None
            signature = read_exactly(child.stdout.fileno(), self.size)
        finally:
            self.idle.put(child)
        if len(signature) != self.size:
            raise _stopped(child)
        return signature

    def _take(self) -> subprocess.Popen[bytes]:
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            if len(self.children) < self.count:
                try:
                    return self._start()
                except OSError as e:
                    raise DeliveryError(f"cannot start a DKIM signing process: {e}") from None
        return self.idle.get()

    def _start(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-I", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self.children.append(child)
        self._write(child, len(self.pem).to_bytes(4, "big") + self.pem)
        return child

    def _write(self, child: subprocess.Popen[bytes], data: bytes) -> None:
        assert child.stdin is not None
        try:
            child.stdin.write(data)
        except OSError:
            raise _stopped(child) from None

    def close(self) -> None:
        """End the children: each exits when its input closes."""
        for child in self.children:
            if child.stdin is not None:
                child.stdin.close()
        for child in self.children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()


def _stopped(child: subprocess.Popen[bytes]) -> DeliveryError:
    try:
        status = child.wait(timeout=1)
    except subprocess.TimeoutExpired:
        how = "it stopped answering"
    else:
        how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
    return DeliveryError(
        f"the DKIM signing process stopped ({how}); the messages not yet sent stay pending:"
        " run `digest send` again"
    )


def process_count(connections: int) -> int:
    """One child per connection: each connection's worker waits for its own
    signature, so the waits overlap even where children outnumber cores."""
    return max(1, min(connections, MAX_CHILDREN))


@contextmanager
def signing(key: DkimKey | None, connections: int) -> Iterator[DkimKey | None]:
    """`key` with its RSA signatures made in child processes for the block.

    Ed25519 stays here: it signs in about 25 us, no more than a round trip.
    When no child can be started, signing stays here too (slower, not wrong).
    """
    if key is None or not isinstance(key.private_key, RSAPrivateKey):
        yield key
        return
    try:
        children = SigningProcesses(key.private_key, process_count(connections))
    except (OSError, DeliveryError) as e:
        log.warning("cannot start DKIM signing processes (%s); signing in this one", e)
        yield key
        return
    try:
        yield replace(key, signer=children.sign)
    finally:
        children.close()
