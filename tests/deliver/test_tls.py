"""TLS and login against a real aiosmtpd with a certificate made in the test:
verified STARTTLS and implicit TLS, never a downgrade, secrets never shown."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from digest import job, store
from digest.cli import main
from digest.edition import save_edition
from digest.errors import DeliveryError
from digest.store import editions, ledger
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler
from tests.tls import self_signed

PASSWORD = "correct horse battery staple"
Server = tuple[PortZeroController, RecordingHandler, Path]


def check_login(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> AuthResult:
    ok = data.login == b"digest" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def start(handler: RecordingHandler, **kwargs: Any) -> PortZeroController:
    controller = PortZeroController(handler, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def starttls_server(tmp_path: Path) -> Iterator[Server]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    controller = start(
        handler,
        tls_context=context,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    try:
        yield controller, handler, cert
    finally:
        controller.stop()


def secure_env(port: int, ca: Path, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "starttls",
        "DIGEST_SMTP_CA_FILE": str(ca),
        "DIGEST_SMTP_USER": "digest",
        "DIGEST_SMTP_PASSWORD": PASSWORD,
        "DIGEST_SMTP_TIMEOUT": "10",
        **extra,
    }


def pending_only(project: Path) -> bool:
    db = store.connect(project / "digest.db")
    try:
        rows = editions.unfinished(db)
        return bool(rows) and set(ledger.counts(db, rows[0].id)) <= {"pending"}
    finally:
        db.close()


def test_starttls_with_login_and_private_ca_delivers(
    project: Path, starttls_server: Server
) -> None:
    controller, handler, cert = starttls_server
    result = job.send(settings_for(project, **secure_env(controller.port, cert)))
    assert result.report.counts == {"sent": 3}
    assert len(handler.messages) == 3


def test_untrusted_certificate_stops_the_send_without_downgrade(
    project: Path, starttls_server: Server, tmp_path: Path
) -> None:
    controller, handler, _ = starttls_server
    other_ca, _ = self_signed(tmp_path, "other")
    with pytest.raises(DeliveryError, match=r"TLS certificate of 127\.0\.0\.1:\d+ is not valid"):
        job.send(settings_for(project, **secure_env(controller.port, other_ca)))
    assert handler.messages == []
    assert pending_only(project)


def test_system_trust_store_rejects_a_self_signed_server(
    project: Path, starttls_server: Server
) -> None:
    controller, handler, _ = starttls_server
    env = secure_env(controller.port, Path("unused"))
    del env["DIGEST_SMTP_CA_FILE"]
    with pytest.raises(DeliveryError, match="DIGEST_SMTP_CA_FILE"):
        job.send(settings_for(project, **env))
    assert handler.messages == []


def test_server_without_starttls_is_refused(project: Path, tmp_path: Path) -> None:
    handler = RecordingHandler()
    controller = start(handler)
    try:
        cert, _ = self_signed(tmp_path)
        env = secure_env(controller.port, cert)
        with pytest.raises(DeliveryError, match="does not offer STARTTLS; refusing to send"):
            job.send(settings_for(project, **env))
    finally:
        controller.stop()
    assert handler.messages == []
    assert pending_only(project)


def test_implicit_tls_is_verified_and_delivers(project: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    controller = start(handler, ssl_context=context)
    try:
        env = {
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(controller.port),
            "DIGEST_SMTP_SECURITY": "ssl",
            "DIGEST_SMTP_CA_FILE": str(cert),
        }
        assert job.send(settings_for(project, **env)).report.counts == {"sent": 3}
    finally:
        controller.stop()
    assert len(handler.messages) == 3


def test_wrong_password_is_one_line_and_the_password_is_never_shown(
    project: Path,
    starttls_server: Server,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    controller, handler, cert = starttls_server
    caplog.set_level(logging.DEBUG)
    wrong = "hunter2-wrong-secret"
    env = secure_env(controller.port, cert, DIGEST_SMTP_PASSWORD=wrong)
    with pytest.raises(DeliveryError, match="refused the login for 'digest'") as error:
        job.send(settings_for(project, **env))
    assert wrong not in str(error.value) and wrong not in caplog.text
    assert handler.messages == []
    for name, value in {**env, **settings_env(project)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(project)
    for args in (["-v", "send"], ["send"], ["send", "--dry-run"], ["status"]):
        out = CliRunner().invoke(main, args)
        shown = out.output + (repr(out.exception) if out.exception else "")
        assert wrong not in shown and wrong not in caplog.text, args
    assert "refused the login" in CliRunner().invoke(main, ["send"]).output


def settings_env(project: Path) -> dict[str, str]:
    return {
        "DIGEST_DATABASE": str(project / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        "DIGEST_OUTBOX": str(project / "outbox"),
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "test-secret-key-for-the-digest-tests",
    }


def test_non_ascii_password_logs_in_as_utf8_and_is_never_shown(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # smtplib encodes credentials as ASCII: a password with "ä" raised an
    # error whose repr (printed by `digest send`) held the password.
    password = "pässwörd-sëcret"
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def utf8_login(server: Any, session: Any, envelope: Any, mech: str, data: Any) -> AuthResult:
        return AuthResult(success=data.password == password.encode("utf-8"), handled=False)

    handler = RecordingHandler()
    controller = start(
        handler, tls_context=context, require_starttls=True, authenticator=utf8_login
    )
    try:
        env = secure_env(controller.port, cert, DIGEST_SMTP_PASSWORD=password)
        sent = job.send(settings_for(project, **env))
        assert sent.report.counts == {"sent": 3} and sent.edition is not None
        save_edition(sent.edition, project / "edition.json")  # a test copy needs an edition
        for name, value in {**env, **settings_env(project)}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrông-sëcret")
        monkeypatch.chdir(project)
        test = ["send", "--edition", "edition.json", "--to", "x@example.org"]
        for args in (test, ["-v", *test]):
            out = CliRunner().invoke(main, args)
            shown = out.output + (repr(out.exception) if out.exception else "")
            assert "sëcret" not in shown, args
            assert "refused the login" in shown, args
    finally:
        controller.stop()
    assert len(handler.messages) == 3
