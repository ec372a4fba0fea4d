"""The preview server on a real loopback port: pages, readers, live reload,
and that it touches no store. Browser checks are in test_preview_browser.py."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from digest.config import Settings
from digest.edition import load_edition, save_edition
from digest.preview import build_edition
from digest.preview_server import PreviewServer
from tests.conftest import settings_for


def start(settings: Settings, edition_file: Path | None = None) -> PreviewServer:
    server = PreviewServer(lambda: settings, edition_file, port=0)
    server.start()
    return server


@pytest.fixture
def server(project: Path) -> Iterator[PreviewServer]:
    running = start(settings_for(project))
    try:
        yield running
    finally:
        running.stop()


def get(server: PreviewServer, path: str) -> str:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def state(server: PreviewServer, reader: str = "sample") -> dict[str, Any]:
    result: dict[str, Any] = json.loads(get(server, f"/state.json?reader={reader}"))
    return result


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the preview did not rebuild in time"
        time.sleep(0.05)


def test_page_shows_subject_preheader_size_and_readers(server: PreviewServer) -> None:
    page = get(server, "/")
    facts = state(server)
    assert facts["subject"].startswith("The Sample Digest #1") and facts["subject"] in page
    assert facts["preheader"] and facts["preheader"] in page
    assert 0 < facts["size"] < facts["budget"] == 102 * 1024
    assert f"{facts['size'] / 1024:.1f} KB of 102 KB" in page
    assert "Grace Hopper &lt;grace@example.org&gt; (technology)" in page
    assert "Solid-State Batteries" in get(server, "/email.html")
    assert "TECHNOLOGY" in get(server, "/email.txt")


def test_reader_picker_shows_personalisation_and_sections(server: PreviewServer) -> None:
    grace = next(r for r in state(server)["readers"] if "grace@" in r["label"])
    html = get(server, f"/email.html?reader={grace['key']}")
    text = get(server, f"/email.txt?reader={grace['key']}")
    assert "Hello Grace Hopper," in html and "Hello Grace Hopper," in text
    assert "grace@example.org" in text
    assert "TECHNOLOGY" in text and "SCIENCE" not in text
    assert "Solid-State Batteries" in html and "Deep-Sea Microbes" not in html
    everyone = get(server, "/email.txt")
    assert "SCIENCE" in everyone and "Hello reader," in everyone


def test_preview_marks_nothing_and_writes_no_database(project: Path) -> None:
    settings = settings_for(project)
    running = start(settings)
    try:
        get(running, "/")
        get(running, "/email.html?reader=line-2")
    finally:
        running.stop()
    assert not settings.database.exists()
    assert not settings.outbox.exists()


def test_changed_article_file_rebuilds_and_notifies(server: PreviewServer, project: Path) -> None:
    before = state(server)["version"]
    host, port = "127.0.0.1", server.httpd.server_address[1]
    stream = http.client.HTTPConnection(host, port, timeout=10)
    stream.request("GET", f"/events?since={before}")
    response = stream.getresponse()
    article = project / "samples" / "technology" / "solid-state-batteries.txt"
    article.write_text(
        article.read_text(encoding="utf-8").replace("Solid-State", "Glass-State", 1),
        encoding="utf-8",
    )
    assert response.readline() == b"event: reload\n"
    stream.close()
    wait_for(lambda: "Glass-State" in get(server, "/email.html"))
    assert state(server)["version"] > before


def test_edition_file_edit_rerenders(project: Path, tmp_path: Path) -> None:
    settings = settings_for(project)
    edition, _ = build_edition(settings, None)
    path = tmp_path / "edition.json"
    save_edition(edition, path)
    running = start(settings, path)
    try:
        assert "out of the edition file" not in get(running, "/email.txt")
        data = json.loads(path.read_text(encoding="utf-8"))
        data["sections"][0]["articles"][0]["summary"] = ["Fixed out of the edition file."]
        path.write_text(json.dumps(data), encoding="utf-8")
        wait_for(lambda: "Fixed out of the edition file." in get(running, "/email.txt"))
        assert load_edition(path).id == edition.id
        path.write_text("{broken", encoding="utf-8")
        wait_for(lambda: "not valid JSON" in state(running)["error"])
        assert "not valid JSON" in get(running, "/")
    finally:
        running.stop()


def test_broken_template_is_shown_then_recovers(project: Path) -> None:
    mine = project / "my-templates"
    mine.mkdir()
    running = start(settings_for(project, DIGEST_TEMPLATES=str(mine)))
    try:
        (mine / "digest.txt.j2").write_text("{% if %}\n", encoding="utf-8")
        wait_for(lambda: "digest.txt.j2" in state(running)["error"])
        (mine / "digest.txt.j2").write_text("Mended: {{ title }}\n", encoding="utf-8")
        wait_for(lambda: get(running, "/email.txt") == "Mended: The Sample Digest\n")
        assert state(running)["error"] == ""
    finally:
        running.stop()


def test_changed_digest_toml_reloads_settings(project: Path) -> None:
    from digest.config import load_settings

    config = project / "digest.toml"
    base = settings_for(project)
    environ = {"DIGEST_DATABASE": str(base.database), "DIGEST_SUBSCRIBERS": str(base.subscribers)}
    running = PreviewServer(lambda: load_settings(config, environ=environ), None, port=0)
    running.start()
    try:
        assert "The Sample Digest" in state(running)["subject"]
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('"The Sample Digest"', '"The Renamed Digest"'), "utf-8")
        wait_for(lambda: "The Renamed Digest" in state(running)["subject"])
    finally:
        running.stop()


def test_unknown_path_is_404(server: PreviewServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        get(server, "/nothing-here")
    assert error.value.code == 404


def test_picker_follows_the_database_and_only_reads_it(project: Path) -> None:
    from digest import store

    settings = settings_for(project)
    db = store.connect(settings.database)
    store.set_preferences(db, "ada@example.org", ["science"])
    store.suppress(db, "edsger@example.org", "unsubscribed via link")
    db.commit()
    db.close()
    before = settings.database.read_bytes()
    running = start(settings)
    try:
        labels = {r["key"]: r["label"] for r in state(running)["readers"]}
        assert labels["line-2"] == "Ada Lovelace <ada@example.org> (science)"
        assert "unsubscribed" in labels["line-6"]
        text = get(running, "/email.txt?reader=line-2")
        assert "SCIENCE" in text and "TECHNOLOGY" not in text
    finally:
        running.stop()
    assert settings.database.read_bytes() == before


@pytest.mark.parametrize("note", [False, True])
def test_reader_whose_sections_are_empty(project: Path, tmp_path: Path, note: bool) -> None:
    settings = settings_for(project, DIGEST_EMPTY_NOTE="1" if note else "0")
    edition, _ = build_edition(settings, None)
    only_technology = [s for s in edition.sections if s.key == "technology"]
    path = tmp_path / "edition.json"
    save_edition(replace(edition, sections=tuple(only_technology)), path)
    running = start(settings, path)
    try:
        facts = state(running, "line-6")  # Edsger reads science only
        page = get(running, "/?reader=line-6")
        if note:
            assert facts["note"] and not facts["empty"]
            assert "nothing new in your sections" in get(running, "/email.txt?reader=line-6")
            assert "they get the short note" in page
        else:
            assert facts["empty"] and not facts["note"]
            assert "gets no email" in get(running, "/email.html?reader=line-6")
            assert "gets no email this time" in page
    finally:
        running.stop()


def test_foreign_host_name_is_refused(server: PreviewServer) -> None:
    port = server.httpd.server_address[1]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/state.json", headers={"Host": f"attacker.example:{port}"})
    response = connection.getresponse()
    assert response.status == 403 and b"grace@" not in response.read()
    connection.close()


def test_digest_preview_command_serves_until_interrupted(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_SUBSCRIBERS"] = "subscribers.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "preview", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Preview at http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "state.json", timeout=10) as response:
            assert json.loads(response.read())["subject"].startswith("The Sample Digest")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
        assert "Stopping the preview." in out
        assert process.returncode == 0
        assert not (project / "digest.db").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
