"""Headers of delivered messages: no header made from CR or LF in a name,
subject, title, sender or address (DKIM: test_dkim.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_message_ids_are_in_order_unique_and_name_their_edition() -> None:
    from digest.deliver.message import MessageIds

    ids = MessageIds(b"k" * 32, "2026-11-30T0700-2", "example.org", start=41)
    made = [ids(key) for key in ("ada@example.org", "jörg@example.org", "ada@example.org")]
    assert made == sorted(made) and len(set(made)) == 3
    assert made[0].startswith("<2026-11-30t0700-2.0000041.") and made[0].endswith("@example.org>")
    # The same address makes the same MAC part; the running number tells them apart.
    assert made[0].split(".")[2] == made[2].split(".")[2]
    assert MessageIds(b"k" * 32, "e", "x.org")("a@x.org") != MessageIds(b"j" * 32, "e", "x.org")(
        "a@x.org"
    )
