"""The preview server on a real loopback port: pages, readers, live reload,
and that it shows what the next send would send: it collects into the store
like `digest collect`, but records no edition, marks nothing sent and writes
no ledger rows. Browser checks are in test_browser.py."""

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

from digest import job, store
from digest.config import Settings
from digest.edition import load_edition, save_edition
from digest.errors import SubscriberError
from digest.model import Edition
from digest.preview import build as build_preview
from digest.preview.server import PreviewServer
from digest.store import audience, editions, ledger, signups
from tests.conftest import settings_for
from tests.smtp_server import PortZeroController, RecordingHandler


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


def next_edition(settings: Settings) -> Edition:
    """The edition the preview (and so the next send) would show now."""
    edition = build_preview(settings, None).edition
    assert edition is not None
    return edition


def store_counts(settings: Settings) -> dict[str, int]:
    """Rows in the store that say something was recorded, claimed or sent."""
    with store.opened(settings.database) as db:
        return {
            "articles": db.scalar("SELECT COUNT(*) FROM articles"),
            "claimed": db.scalar("SELECT COUNT(*) FROM articles WHERE sent_edition IS NOT NULL"),
            "editions": db.scalar("SELECT COUNT(*) FROM editions"),
            "deliveries": db.scalar("SELECT COUNT(*) FROM deliveries"),
        }


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


def test_preview_collects_but_records_marks_and_sends_nothing(project: Path) -> None:
    settings = settings_for(project)
    running = start(settings)
    try:
        get(running, "/")
        get(running, "/email.html?reader=line-2")
    finally:
        running.stop()
    # Like `digest collect`, the store now holds the six sample articles; but no
    # edition was recorded, no article claimed and no ledger row written.
    counts = store_counts(settings)
    assert counts == {"articles": 6, "claimed": 0, "editions": 0, "deliveries": 0}
    assert not settings.outbox.exists()
    # So the next send still sends every one of them.
    result = job.send(settings)
    assert result.edition is not None and len(result.edition.article_ids) == 6


def test_after_a_send_the_preview_shows_only_what_is_new(project: Path) -> None:
    settings = settings_for(project)
    sent = job.send(settings)
    assert sent.edition is not None and sent.report.counts == {"sent": 3}
    running = start(settings)
    try:
        facts = state(running)
        assert facts["edition"] is None and "Nothing new to send" in facts["error"]
        assert "Nothing new to send" in get(running, "/")
        assert "Solid-State Batteries" not in get(running, "/email.html")
        article = project / "samples" / "science" / "comet.txt"
        article.write_text(
            "A Comet Returns Early\nA new piece for the science section.\n", encoding="utf-8"
        )
        wait_for(lambda: state(running)["edition"] is not None)
        facts = state(running)
        assert facts["edition"]["number"] == sent.edition.number + 1
        html = get(running, "/email.html")
        assert "A Comet Returns Early" in html
        assert "Solid-State Batteries" not in html and "Deep-Sea Microbes" not in html
    finally:
        running.stop()
    assert store_counts(settings)["editions"] == 1  # the preview recorded none


def test_an_unfinished_edition_is_what_the_preview_shows(project: Path) -> None:
    missing = project / "gone.csv"
    settings = settings_for(project, DIGEST_SUBSCRIBERS=str(missing))
    # A send whose list is missing leaves its edition unfinished, articles claimed.
    with pytest.raises(SubscriberError, match=r"gone\.csv"):
        job.send(settings)
    with store.opened(settings.database) as db:
        (row,) = editions.unfinished(db)
    (project / "samples" / "science" / "comet.txt").write_text(
        "A Comet Returns Early\nA new piece for the science section.\n", encoding="utf-8"
    )
    running = start(settings_for(project))
    try:
        facts = state(running)
        # The next send finishes that edition first: the preview shows it, not the new article.
        assert facts["edition"] == {"id": row.id, "number": row.number}
        html = get(running, "/email.html")
        assert "Solid-State Batteries" in html and "A Comet Returns Early" not in html
    finally:
        running.stop()
    with store.opened(settings.database) as db:
        after = editions.get(db, row.id)
        assert after is not None and after.state == editions.BUILT
        assert ledger.counts(db, row.id) == {}
    counts = store_counts(settings)
    assert (counts["editions"], counts["claimed"], counts["deliveries"]) == (1, 6, 0)


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
    edition = next_edition(settings)
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


def test_picker_follows_the_database_and_changes_no_subscriber_state(project: Path) -> None:
    settings = settings_for(project)
    with store.opened(settings.database) as db:
        audience.set_preferences(db, "ada@example.org", ["science"])
    running = start(settings)
    try:
        labels = {r["key"]: r["label"] for r in state(running)["readers"]}
        assert labels["line-2"] == "Ada Lovelace <ada@example.org> (science)"
        text = get(running, "/email.txt?reader=line-2")
        assert "SCIENCE" in text and "TECHNOLOGY" not in text
    finally:
        running.stop()
    with store.opened(settings.database) as db:
        assert audience.state_of(db, "ada@example.org") == (None, frozenset({"science"}))
        assert audience.count_suppressed(db) == 0


def test_the_picker_reads_the_list_as_the_send_does_with_its_sign_ups(project: Path) -> None:
    settings = settings_for(project)
    stamp = "2026-11-30T06:00:00+00:00"
    with store.opened(settings.database) as db:
        # Grace also confirmed a web sign-up (the database wins), and Zoe is
        # only in the database.
        for address, name in (
            ("grace@example.org", "Rear Admiral Hopper"),
            ("Zoe@Example.org", "Zoe"),
        ):
            signups.request(db, address, name, (), "", stamp)
            assert signups.confirm(db, address, stamp)
    running = start(settings)
    try:
        readers = {r["label"]: r["key"] for r in state(running)["readers"]}
        assert "Rear Admiral Hopper <grace@example.org> (technology)" in readers
        zoe = readers["Zoe <Zoe@Example.org> (every section) [sign-up]"]
        assert zoe.startswith("signup-")
        assert "Hello Zoe," in get(running, f"/email.txt?reader={zoe}")
        assert "Hello Rear Admiral Hopper," in get(running, "/email.txt?reader=line-3")
    finally:
        running.stop()
    planned = job.dry_run(settings)
    # The dry run counts the same readers: ada, grace, edsger and zoe.
    assert planned["counts"]["to_send"] == 4 and "Zoe@Example.org" in planned["samples"]


def test_a_suppressed_reader_is_shown_getting_nothing_and_why(project: Path) -> None:
    settings = settings_for(project)
    with store.opened(settings.database) as db:
        audience.suppress(db, "edsger@example.org", "unsubscribed via link")
    running = start(settings)
    try:
        labels = {r["key"]: r["label"] for r in state(running)["readers"]}
        assert labels["line-6"] == "Edsger Dijkstra <edsger@example.org> (science, suppressed)"
        facts = state(running, "line-6")
        # The audience decides, as in the send: a suppressed reader gets no copy,
        # even though their section has articles.
        assert facts["empty"] and not facts["note"] and facts["subject"] == ""
        assert facts["why_nothing"] == "they unsubscribed or their address bounced"
        page = get(running, "/?reader=line-6")
        assert "gets no email this time: they unsubscribed or their address bounced." in page
        html = get(running, "/email.html?reader=line-6")
        assert "gets no email" in html and "unsubscribed or their address bounced" in html
        assert "Deep-Sea Microbes" not in html
        # A reader whose status in the list is not active gets nothing either.
        assert "status in the list is not active" in state(running, "line-4")["why_nothing"]
        assert "(every section, inactive)" in labels["line-4"]
        # Everyone else still gets their copy.
        assert "Deep-Sea Microbes" in get(running, "/email.html?reader=line-2")
    finally:
        running.stop()


def test_the_picker_agrees_with_the_dry_run_and_the_send(
    project: Path, smtp_server: tuple[PortZeroController, RecordingHandler]
) -> None:
    controller, handler = smtp_server
    settings = settings_for(
        project,
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(controller.port),
        DIGEST_SMTP_SECURITY="none",
    )
    with store.opened(settings.database) as db:
        audience.set_preferences(db, "grace@example.org", ["science"])
        audience.suppress(db, "edsger@example.org", "bounced: 550 no such user")
    running = start(settings)
    try:
        shown = {}
        for reader in state(running)["readers"][1:]:
            text = get(running, f"/email.txt?reader={reader['key']}")
            if not state(running, reader["key"])["empty"]:
                email = reader["label"].split("<", 1)[1].split(">", 1)[0]
                shown[email] = ("TECHNOLOGY" in text, "SCIENCE" in text)
    finally:
        running.stop()
    assert shown == {"ada@example.org": (True, True), "grace@example.org": (False, True)}
    counts = job.dry_run(settings)["counts"]
    assert counts == {"to_send": 2, "suppressed": 1, "no_copy": 0, "inactive": 1}
    job.send(settings)
    delivered = {
        m["To"].addresses[0].addr_spec: m.get_body(("plain",)).get_content()
        for m in handler.parsed()
    }
    assert {k: ("TECHNOLOGY" in v, "SCIENCE" in v) for k, v in delivered.items()} == shown


@pytest.mark.parametrize("note", [False, True])
def test_reader_whose_sections_are_empty(project: Path, tmp_path: Path, note: bool) -> None:
    settings = settings_for(project, DIGEST_EMPTY_NOTE="1" if note else "0")
    edition = next_edition(settings)
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
        # The preview collected into the store, and recorded nothing else.
        with store.opened(project / "digest.db") as db:
            assert db.scalar("SELECT COUNT(*) FROM articles") == 6
            assert db.scalar("SELECT COUNT(*) FROM editions") == 0
            assert db.scalar("SELECT COUNT(*) FROM deliveries") == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
