"""Headers of delivered messages: DKIM that verifies, and no header made
from CR or LF in a name, subject, title, sender or address."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest import job
from digest.config import load_settings
from digest.deliver.transports import SmtpChannel
from digest.errors import ConfigError
from digest.store import ledger
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler

Server = tuple[PortZeroController, RecordingHandler]


def smtp(controller: PortZeroController, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
        **extra,
    }


def rsa_key(folder: Path) -> tuple[Path, bytes]:
    """A private key file and the DNS TXT record that publishes its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def test_dkim_signature_verifies_and_covers_the_unsubscribe_headers(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    key_file, record = rsa_key(tmp_path)
    env = smtp(controller, DIGEST_DKIM_KEY_FILE=str(key_file), DIGEST_DKIM_SELECTOR="news")
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        looked_up.append(name)
        return record

    for _, _, raw in handler.messages:
        assert dkim.verify(raw, dnsfunc=dns)
        signature = raw.split(b"\r\n\r\n", 1)[0].decode()
        signed = re.search(r"h=([^;]+)", signature.replace("\r\n", "")).group(1)  # type: ignore[union-attr]
        assert {"list-unsubscribe", "list-unsubscribe-post", "message-id"} <= {
            h.strip().lower() for h in signed.split(":")
        }
        tampered = raw.replace(b"unsubscribe?token=", b"unsubscribe?token=X", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)
    assert set(looked_up) == {b"news._domainkey.example.org."}


def test_ed25519_dkim_signature_verifies(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    key = ed25519.Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key_file = tmp_path / "dkim.ed25519"
    key_file.write_bytes(base64.b64encode(seed) + b"\n")
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)
    env = smtp(
        controller,
        DIGEST_DKIM_KEY_FILE=str(key_file),
        DIGEST_DKIM_SELECTOR="ed",
        DIGEST_DKIM_DOMAIN="mail.example.org",
    )
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    for _, _, raw in handler.messages:
        assert b"a=ed25519-sha256" in raw and b"d=mail.example.org" in raw
        assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)


def test_dkim_settings_are_checked_before_anything_is_sent(
    project: Path, smtp_server: Server, tmp_path: Path
) -> None:
    controller, handler = smtp_server
    with pytest.raises(ConfigError, match="DIGEST_DKIM_SELECTOR is empty"):
        settings_for(project, DIGEST_DKIM_KEY_FILE=str(tmp_path / "k.pem"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key", encoding="utf-8")
    env = smtp(controller, DIGEST_DKIM_KEY_FILE=str(bad), DIGEST_DKIM_SELECTOR="news")
    with pytest.raises(ConfigError, match="DKIM signing failed"):
        job.send(settings_for(project, **env))
    assert handler.messages == []


INJECTED = "x\r\nBcc: eve@evil.example\r\nX-Injected: yes"


def test_cr_lf_in_names_subject_title_and_sender_never_make_a_header(
    project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    (project / "subscribers.csv").write_text(
        f'email,name\nada@example.org,"Ada{INJECTED}"\n', encoding="utf-8"
    )
    env = smtp(
        controller,
        DIGEST_TITLE=f"Digest{INJECTED}",
        DIGEST_FROM=f'"News{INJECTED}" <digest@example.org>',
    )
    assert job.send(settings_for(project, **env)).report.counts == {"sent": 1}
    [(_, rcpts, raw)] = handler.messages
    assert rcpts == ["ada@example.org"]
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].lower() for line in head.split(b"\r\n") if line[:1] not in b" \t"
    ]
    assert b"bcc" not in names and b"x-injected" not in names
    [message] = handler.parsed()
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "Bcc: eve" in message["To"].addresses[0].display_name.replace("  ", " ")


def test_unsafe_recipient_address_is_refused_before_the_envelope(
    project: Path, smtp_server: Server
) -> None:
    controller, handler = smtp_server
    settings = load_settings(project / "digest.toml", environ=smtp(controller))
    channel = SmtpChannel(settings.smtp)
    try:
        outcome = channel.send(
            "digest@example.org", "ada@example.org>\r\nRCPT TO:<eve@evil.example", b"x\r\n"
        )
    finally:
        channel.close()
    assert outcome.status == ledger.FAILED
    assert handler.messages == []


@pytest.mark.parametrize(
    "url", ["https://news.example.org\r\nBcc: eve@evil.example", "https://nëws.example.org", ""]
)
def test_base_url_that_could_break_list_unsubscribe_is_refused(project: Path, url: str) -> None:
    # DIGEST_BASE_URL goes into the List-Unsubscribe header of every message.
    with pytest.raises(ConfigError, match=r"base_url .*must be an absolute http"):
        load_settings(project / "digest.toml", environ={}, overrides={"base_url": url})


def test_message_ids_made_in_bulk_are_the_message_ids() -> None:
    from digest.deliver.message import MessageIds, message_id

    ids = MessageIds(b"k" * 32, "2026-11-30T0700-2", "example.org")
    for email in ("Ada@Example.org", "jörg@example.org", "x@y.z"):
        assert ids(email) == message_id(b"k" * 32, "2026-11-30T0700-2", "example.org", email)
