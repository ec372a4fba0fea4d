"""Keys, tokens and servers under attack: short secrets refused, one token
one spelling, loopback meaning loopback, idle sockets that cannot stall
`digest serve`, preferences without a scan of the list per request, and the
preview's frame and query guards. Property tests for token verification."""

from __future__ import annotations

import base64
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest import store
from digest.deliver import lookup, tokens
from digest.errors import ConfigError
from digest.preview.server import PreviewServer
from tests.conftest import settings_for
from tests.web.test_app import Server, start, token

SECRET = b"k" * 32


def test_a_short_secret_is_refused_with_how_to_make_one(project: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"DIGEST_SECRET_KEY is 1 bytes; it must be at least 32"
    ) as e:
        settings_for(project, DIGEST_SECRET_KEY="k")
    assert "secrets.token_urlsafe(32)" in str(e.value)
    assert settings_for(project, DIGEST_SECRET_KEY="x" * 32).secret_key == "x" * 32


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("127.attacker.example", False),
        ("127.0.0.1.nip.io", False),
        ("smtp.example.org", False),
    ],
)
def test_a_login_in_clear_goes_only_to_this_machine(
    project: Path, host: str, allowed: bool
) -> None:
    env = {
        "DIGEST_SMTP_HOST": host,
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_USER": "u",
        "DIGEST_SMTP_PASSWORD": "p",
    }
    if allowed:
        assert settings_for(project, **env).smtp_host == host
    else:
        with pytest.raises(ConfigError, match="would send the password to"):
            settings_for(project, **env)


def test_the_database_holding_the_generated_key_is_private(tmp_path: Path) -> None:
    db = store.connect(tmp_path / "new.db")
    try:
        from digest.store import meta

        assert len(meta.signing_key(db, "")) == 32
    finally:
        db.close()
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_a_token_has_one_spelling() -> None:
    good = tokens.sign(SECRET, "list", "ad@example.org")  # 14 bytes: 4 spare bits
    address, signature = good.split(".")
    assert tokens.verify(SECRET, "list", good) == "ad@example.org"
    # The last character of each part has spare low bits: flip them.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spellings = set()
    for part, other in ((address, signature), (signature, address)):
        for char in alphabet:
            twin = part[:-1] + char
            if twin != part and base64.urlsafe_b64decode(twin + "=" * (-len(twin) % 4)) == (
                base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            ):
                spellings.add(f"{twin}.{other}" if part == address else f"{other}.{twin}")
    assert spellings  # base64 does leave such slack
    assert all(tokens.verify(SECRET, "list", s) is None for s in spellings)


@given(st.emails())
def test_a_signed_token_verifies_to_its_address(address: str) -> None:
    assert tokens.verify(SECRET, "list", tokens.sign(SECRET, "list", address)) == address.lower()
    assert tokens.verify(b"o" * 32, "list", tokens.sign(SECRET, "list", address)) is None


@given(st.emails(), st.integers(min_value=0), st.characters())
def test_any_change_to_a_token_is_refused(address: str, where: int, char: str) -> None:
    good = tokens.sign(SECRET, "list", address)
    index = where % len(good)
    forged = good[:index] + char + good[index + 1 :]
    assert forged == good or tokens.verify(SECRET, "list", forged) is None


@given(st.text(max_size=500))
def test_any_string_is_refused_unless_signed(text: str) -> None:
    found = tokens.verify(SECRET, "list", text)
    assert found is None or tokens.sign(SECRET, "list", found) == text


def test_idle_sockets_cannot_stall_the_server(project: Path, smtp_server: Server) -> None:
    site = start(project, smtp_server)
    port = site.server.effective_port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(120)]
    try:
        # Past waitress's default limit (100), each kept two minutes, these
        # made this request wait until it timed out.
        assert site.http.get("/healthz").text == "ok\n"
    finally:
        for sock in idle:
            sock.close()
        site.stop()


def test_an_idle_connection_is_closed_after_the_idle_timeout(
    project: Path, smtp_server: Server
) -> None:
    site = start(project, smtp_server, DIGEST_SERVE_IDLE_TIMEOUT="1")
    try:
        with socket.create_connection(("127.0.0.1", site.server.effective_port)) as sock:
            sock.settimeout(20)  # waitress's default would keep it 120 s
            assert sock.recv(1) == b""
    finally:
        site.stop()


def test_preferences_are_looked_up_without_reading_the_list_per_request(
    project: Path, smtp_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []
    real = lookup.SectionsIndex._load

    def counting(index: lookup.SectionsIndex) -> None:
        loads.append(index.path)
        real(index)

    monkeypatch.setattr(lookup.SectionsIndex, "_load", counting)
    site = start(project, smtp_server)
    try:
        for _ in range(5):
            page = site.http.get("/preferences", params={"token": token("grace@example.org")})
            assert 'value="technology" checked' in page.text.replace("\n", " ")
        assert len(loads) == 1
        csv = project / "subscribers.csv"
        csv.write_text(
            csv.read_text().replace(
                "grace@example.org,Grace Hopper,technology",
                "grace@example.org,Grace Hopper,science",
            )
        )
        os.utime(csv, ns=(1, 1))  # a changed file is read again, even within the same second
        page = site.http.get("/preferences", params={"token": token("grace@example.org")})
        assert 'value="science" checked' in page.text.replace("\n", " ")
        assert len(loads) == 2
    finally:
        site.stop()


@pytest.fixture
def preview(project: Path) -> Iterator[PreviewServer]:
    server = PreviewServer(lambda: settings_for(project), port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_the_preview_is_never_framed_and_refuses_bad_queries(preview: PreviewServer) -> None:
    with httpx.Client(base_url=preview.url, timeout=10) as http:
        page = http.get("/")
        assert page.headers["content-security-policy"] == "frame-ancestors 'none'"
        email = http.get("/email.html")
        assert "frame-ancestors 'self'" in email.headers["content-security-policy"]
        for bad in ("abc", "-1", "1e3", "9" * 40):
            answer = http.get("/events", params={"since": bad})
            assert answer.status_code == 400
