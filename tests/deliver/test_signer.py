"""RSA signing in child processes: right signatures from any thread, children
that end with the send, ignore stop signals and never see the key in their
arguments or environment, and a dead child that stops the send cleanly."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import dkim
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from digest import job
from digest.deliver.dkim import load_dkim_key, signed
from digest.deliver.signer import SigningProcesses, signing
from digest.errors import DeliveryError
from digest.store import ledger, opened
from tests.conftest import settings_for
from tests.deliver.test_dkim import Server, dns_for, ed25519_key, message_for, rsa_key, smtp


@pytest.fixture
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def digest_of(n: int) -> bytes:
    return bytes([n % 256]) * 32


def verify(key: rsa.RSAPrivateKey, digest: bytes, signature: bytes) -> bool:
    try:
        key.public_key().verify(
            signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


def test_children_sign_for_any_thread_and_end_with_close(key: rsa.RSAPrivateKey) -> None:
    children = SigningProcesses(key, 2)
    results: dict[int, bytes] = {}

    def sign(first: int) -> None:
        for n in range(first, first + 25):
            results[n] = children.sign(digest_of(n))

    threads = [threading.Thread(target=sign, args=(start,)) for start in (0, 25, 50, 75)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 100
    assert all(verify(key, digest_of(n), signature) for n, signature in results.items())
    assert not verify(key, digest_of(1), results[2])
    children.close()
    assert 1 <= len(children.children) <= 2  # started as needed, never more than asked
    assert all(child.returncode == 0 for child in children.children)


def test_the_key_is_in_no_childs_arguments_or_environment(key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    body = b"".join(pem.splitlines()[1:3])
    children = SigningProcesses(key, 1)
    try:
        [child] = children.children
        for part in ("cmdline", "environ"):
            assert body not in Path(f"/proc/{child.pid}/{part}").read_bytes()
    finally:
        children.close()


def test_children_leave_stop_signals_to_the_sender(key: rsa.RSAPrivateKey) -> None:
    # The sender finishes the messages in flight on SIGTERM or Ctrl-C: their
    # signatures must still come.
    children = SigningProcesses(key, 1)
    try:
        assert verify(key, digest_of(1), children.sign(digest_of(1)))  # it is up
        for sig in (signal.SIGTERM, signal.SIGINT):
            os.kill(children.children[0].pid, sig)
        assert verify(key, digest_of(2), children.sign(digest_of(2)))
    finally:
        children.close()


def test_a_dead_child_is_a_delivery_error_that_says_what_to_do(key: rsa.RSAPrivateKey) -> None:
    children = SigningProcesses(key, 1)
    try:
        children.children[0].kill()
        children.children[0].wait()
        stopped = r"signing process stopped \(killed by signal 9\).*`digest send` again"
        with pytest.raises(DeliveryError, match=stopped):
            children.sign(digest_of(1))
    finally:
        children.close()


def test_only_rsa_goes_to_children(tmp_path: Path) -> None:
    rsa_file, record = rsa_key(tmp_path)
    ed_file, _ = ed25519_key(tmp_path)
    message = message_for("Ada", ())
    with signing(load_dkim_key(rsa_file, "news", "example.org"), 4) as key:
        assert key is not None and key.signer is not None
        assert dkim.verify(signed(message, key), dnsfunc=dns_for(record))
    with signing(load_dkim_key(ed_file, "news", "example.org"), 4) as key:
        assert key is not None and key.signer is None
    with signing(None, 4) as key:
        assert key is None


def signing_children() -> list[int]:
    """This process's children running the signer (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if b"signer_child.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def test_a_send_whose_signer_dies_stops_and_the_next_send_finishes_it(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    rows = "".join(f"reader{n}@example.org,Reader {n},,active\n" for n in range(150))
    (project / "subscribers.csv").write_text("email,name,sections,status\n" + rows)
    key_file, record = rsa_key(tmp_path)
    env = smtp(controller, DIGEST_DKIM_KEY_FILE=str(key_file), DIGEST_DKIM_SELECTOR="news")
    settings = settings_for(project, **env)
    killed: list[int] = []

    def kill_the_signer(_: object) -> None:
        for pid in signing_children():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    with pytest.raises(DeliveryError, match="DKIM signing process stopped"):
        job.send(settings, progress=kill_the_signer)
    assert killed and not signing_children()
    first = len(handler.messages)
    assert 0 < first < 150
    assert job.send(settings).report.counts == {"sent": 150 - first}
    received = [rcpts[0] for _, rcpts, _ in handler.messages]
    assert sorted(received) == sorted(f"reader{n}@example.org" for n in range(150))
    assert all(dkim.verify(raw, dnsfunc=dns_for(record)) for _, _, raw in handler.messages)
    with opened(settings.database) as db:
        [edition] = db.all("SELECT id FROM editions")
        assert ledger.counts(db, edition["id"]) == {ledger.SENT: 150}
    assert not signing_children()
