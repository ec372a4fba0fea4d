"""A misbehaving SMTP server gets Postfix's answers: a fault injected at each
stage of a real aiosmtpd session (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT,
DATA, end of data), pipelined and not, and what the ledger then holds."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from digest import job, store
from digest.errors import DeliveryError
from digest.store import audience
from tests.conftest import settings_for
from tests.smtp_server import (
    Fault,
    Faults,
    GreylistHandler,
    PortZeroController,
    ScriptedHandler,
    serving,
)
from tests.tls import self_signed

ACTIVE = ["ada@example.org", "edsger@example.org", "grace@example.org"]
Server = tuple[PortZeroController, ScriptedHandler, Faults]


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def faulty(request: pytest.FixtureRequest) -> Iterator[Server]:
    handler, faults = ScriptedHandler(pipelining=request.param), Faults()
    with serving(handler, faults) as controller:
        yield controller, handler, faults


def env(controller: PortZeroController, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(controller.port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": "1",
        "DIGEST_RETRY_DELAY": "0.01",
        "DIGEST_SMTP_TIMEOUT": "2",
        **extra,
    }


def rows(project: Path) -> dict[str, tuple[str, int, str]]:
    """email -> (status, attempts, last reply) of the newest edition's ledger."""
    db = store.connect(project / "digest.db")
    try:
        found = db.all(
            "SELECT email, status, attempts, last_reply FROM deliveries WHERE edition_id ="
            " (SELECT id FROM editions ORDER BY number DESC LIMIT 1)"
        )
        return {r["email"]: (r["status"], r["attempts"], r["last_reply"]) for r in found}
    finally:
        db.close()


def received(handler: ScriptedHandler) -> list[str]:
    return sorted(rcpt for _, rcpts, _ in handler.messages for rcpt in rcpts)


def test_a_5xx_to_the_data_command_fails_that_delivery_with_its_own_reply(
    project: Path, faulty: Server
) -> None:
    controller, handler, faults = faulty
    faults.add("DATA", Fault("554 5.7.1 no DATA for you"), address="ada@example.org")
    result = job.send(settings_for(project, **env(controller)))
    assert result.report.counts == {"sent": 2, "failed": 1}
    assert rows(project)["ada@example.org"] == ("failed", 1, "DATA: 554 5.7.1 no DATA for you")
    db = store.connect(project / "digest.db")
    assert audience.state_of(db, "ada@example.org")[0] is None  # not suppressed
    db.close()
    assert received(handler) == ["edsger@example.org", "grace@example.org"]


def test_a_4xx_to_the_data_command_defers_that_delivery_alone(
    project: Path, faulty: Server
) -> None:
    controller, _handler, faults = faulty
    faults.add("DATA", Fault("451 4.3.0 try DATA later"), address="ada@example.org")
    settings = settings_for(project, **env(controller, DIGEST_MAX_ATTEMPTS="1"))
    assert job.send(settings).report.counts == {"sent": 2, "deferred": 1}
    assert rows(project)["ada@example.org"] == ("deferred", 1, "DATA: 451 4.3.0 try DATA later")


def test_421_to_mail_then_close_is_retried_when_the_pause_ends_without_spending_a_try(
    project: Path, faulty: Server
) -> None:
    controller, handler, faults = faulty
    faults.add("MAIL", Fault("421 4.7.0 too busy, closing", close=True))
    settings = settings_for(project, **env(controller, DIGEST_MAX_ATTEMPTS="1"))
    assert job.send(settings).report.counts == {"sent": 3}
    assert sorted(attempts for _, attempts, _ in rows(project).values()) == [1, 1, 2]
    assert handler.sessions == 2  # a new session after the close
    assert received(handler) == ACTIVE


def test_421_after_the_message_is_recorded_and_retried(project: Path, faulty: Server) -> None:
    controller, handler, faults = faulty
    faults.add("end", Fault("421 4.4.2 timeout, closing", close=True), address="ada@example.org")
    assert job.send(settings_for(project, **env(controller))).report.counts == {"sent": 3}
    assert rows(project)["ada@example.org"][:2] == ("sent", 2)
    assert received(handler) == ACTIVE


def test_greylisting_defers_only_the_new_addresses_and_the_send_carries_on(
    project: Path,
) -> None:
    # Thirty addresses, each refused with 451 for half a second: the pool
    # never pauses for them (it used to, doubling up to five minutes).
    (project / "subscribers.csv").write_text(
        "email\n" + "".join(f"r{n}@example.org\n" for n in range(30)), encoding="utf-8"
    )
    handler = GreylistHandler(seconds=0.5)
    with serving(handler) as controller:
        settings = settings_for(
            project, **env(controller, DIGEST_RETRY_DELAY="0.6", DIGEST_SMTP_CONNECTIONS="2")
        )
        result = job.send(settings)
    assert result.report.counts == {"sent": 30}
    assert {attempts for _, attempts, _ in rows(project).values()} == {2}
    assert len(handler.messages) == 30


@pytest.mark.parametrize(
    ("stage", "fault"),
    [
        ("greeting", Fault("421 4.3.2 busy now", close=True)),
        ("greeting", Fault(hang=1.5)),
        ("EHLO", Fault("421 4.3.2 not now", close=True)),
        ("EHLO", Fault(hang=1.5)),
    ],
    ids=["greeting-421", "greeting-timeout", "ehlo-421", "ehlo-timeout"],
)
def test_a_session_refused_or_silent_on_reconnect_is_retried_not_a_wrong_host(
    project: Path, faulty: Server, stage: str, fault: Fault
) -> None:
    controller, handler, faults = faulty
    faults.add(stage, Fault(), fault)  # the first session is fine, the second is not
    settings = settings_for(
        project,
        **env(controller, DIGEST_SMTP_MESSAGES_PER_CONNECTION="1", DIGEST_SMTP_TIMEOUT="1"),
    )
    assert job.send(settings).report.counts == {"sent": 3}
    assert received(handler) == ACTIVE
    retried = [r for r in rows(project).values() if r[1] == 2]
    assert len(retried) == 1


def test_a_timeout_is_reported_as_a_timeout(project: Path, faulty: Server) -> None:
    controller, _handler, faults = faulty
    faults.add("RCPT", Fault(hang=1.5), address="ada@example.org")
    settings = settings_for(
        project, **env(controller, DIGEST_MAX_ATTEMPTS="1", DIGEST_SMTP_TIMEOUT="0.5")
    )
    job.send(settings)
    status, _, reply = rows(project)["ada@example.org"]
    assert (status, reply) == ("deferred", "timeout: no reply to RCPT within 0.5 s")


def test_the_reply_after_the_message_has_its_own_long_timeout(
    project: Path, faulty: Server
) -> None:
    # Commands time out after 0.5 s, but the server may take longer to accept
    # the message itself (RFC 5321: ten minutes): it gets each message once.
    controller, handler, faults = faulty
    faults.add("end", Fault(hang=1.0), address="ada@example.org")
    settings = settings_for(
        project,
        **env(controller, DIGEST_SMTP_TIMEOUT="0.5", DIGEST_SMTP_DATA_TIMEOUT="5"),
    )
    assert job.send(settings).report.counts == {"sent": 3}
    assert received(handler) == ACTIVE  # nobody twice
    assert rows(project)["ada@example.org"][:2] == ("sent", 1)


def test_past_the_data_timeout_the_message_is_deferred_as_a_timeout(
    project: Path, faulty: Server
) -> None:
    controller, _handler, faults = faulty
    faults.add("end", Fault(hang=2.0), address="ada@example.org")
    settings = settings_for(
        project,
        **env(controller, DIGEST_MAX_ATTEMPTS="1", DIGEST_SMTP_DATA_TIMEOUT="0.5"),
    )
    job.send(settings)
    status, _, reply = rows(project)["ada@example.org"]
    assert (status, reply) == ("deferred", "timeout: no reply to end of data within 0.5 s")


def test_a_server_that_never_lets_a_session_open_stops_the_send(
    project: Path, faulty: Server
) -> None:
    controller, _handler, faults = faulty
    faults.busy("greeting", Fault("421 4.3.2 overloaded", close=True), seconds=60)
    settings = settings_for(project, **env(controller))
    with pytest.raises(DeliveryError, match=r"sessions in a row could not be opened .*421 4\.3\.2"):
        job.send(settings)
    assert {status for status, *_ in rows(project).values()} <= {"pending", "deferred"}


def test_a_bug_met_on_one_message_fails_that_delivery_only(
    project: Path, faulty: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.deliver import send

    controller, _handler, _faults = faulty
    real = send.render_message

    def render(skeleton: Any, base_url: str, address: str, *rest: Any) -> bytes:
        if address == "grace@example.org":
            raise KeyError("a bug")
        return real(skeleton, base_url, address, *rest)

    monkeypatch.setattr(send, "render_message", render)
    result = job.send(settings_for(project, **env(controller)))
    assert result.report.counts == {"sent": 2, "failed": 1}
    status, _, reply = rows(project)["grace@example.org"]
    assert status == "failed" and "digest failed on this message (KeyError)" in reply


# STARTTLS and AUTH faults need a TLS server.


def check_login(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> AuthResult:
    return AuthResult(success=data.login == b"digest" and data.password == b"pw", handled=False)


@pytest.mark.parametrize("stage", ["STARTTLS", "AUTH"])
def test_a_temporary_refusal_of_tls_or_login_is_retried_over_tls(
    project: Path, tmp_path: Path, stage: str
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, faults = ScriptedHandler(), Faults()
    faults.add(stage, Fault("454 4.7.0 temporarily unavailable"))
    kwargs = {"tls_context": context, "require_starttls": True, "authenticator": check_login}
    with serving(handler, faults, **kwargs) as controller:
        settings = settings_for(
            project,
            **env(
                controller,
                DIGEST_SMTP_SECURITY="starttls",
                DIGEST_SMTP_CA_FILE=str(cert),
                DIGEST_SMTP_USER="digest",
                DIGEST_SMTP_PASSWORD="pw",
            ),
        )
        result = job.send(settings)
    assert result.report.counts == {"sent": 3}
    assert (stage, "454 4.7.0 temporarily unavailable") in faults.used
    assert received(handler) == ACTIVE


def test_a_server_that_keeps_saying_slow_down_stops_the_send_with_the_rest_pending(
    project: Path, faulty: Server
) -> None:
    controller, _handler, faults = faulty
    faults.busy("MAIL", Fault("421 4.7.0 try again later", close=True), seconds=600)
    settings = settings_for(project, **env(controller, DIGEST_RETRY_DELAY="0.005"))
    with pytest.raises(DeliveryError, match=r"kept refusing \(MAIL: 421 4\.7\.0 try again later\)"):
        job.send(settings)
    left = rows(project).values()
    assert {status for status, *_ in left} <= {"pending", "deferred"}
    # What the ledger keeps is the server's own answer.
    tried = [reply for status, _, reply in left if status == "deferred"]
    assert tried and set(tried) == {"MAIL: 421 4.7.0 try again later"}
