"""The subscriber list: validation, duplicates, the database's word over the
CSV, and the `digest subscribers` commands, on real files and a real SQLite."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from digest import store
from digest.cli import main
from digest.deliver import subscribers
from digest.deliver.message import unsubscribe_token
from digest.deliver.subscribers import RowError
from digest.errors import SubscriberError
from digest.model import Subscriber
from digest.store import audience
from tests.conftest import settings_for

MESSY = """email,name,sections,status,timezone,company,Favourite Colour
ada@example.org,Ada Lovelace,,active,Europe/London,Analytical Engines,green
not-an-address,Broken Row,,active,,,
grace@example.org,Grace Hopper,technology,active,,Navy,
ADA@Example.org,Ada Again,science,active,,,
katherine@example.org,Katherine Johnson,science;technology,paused,,,
edsger@example.org,Edsger Dijkstra,science,active,Mars/Olympus,,
alan@example.org,Alan Turing,,unsubscribed,,,
"""


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_bad_row_is_reported_with_line_and_reason(tmp_path: Path) -> None:
    path = write(tmp_path, MESSY)
    problems: list[RowError] = []
    summary = subscribers.check(path, problems.append)
    by_line = {p.line: p.message for p in problems}
    assert sorted(by_line) == [3, 5, 6, 7]
    assert "invalid address 'not-an-address'" in by_line[3]
    assert by_line[5] == "duplicate of line 2 (ADA@example.org); the first row wins"
    assert "status 'paused'" in by_line[6]
    assert "timezone 'Mars/Olympus'" in by_line[7]
    assert str(problems[0]).startswith(f"{path}:3: ")
    assert summary.rows == 7
    assert summary.statuses == {"active": 2, "unsubscribed": 1}
    assert (summary.bad, summary.duplicates, summary.ok) == (3, 1, False)


def test_first_row_of_a_repeated_address_wins(tmp_path: Path) -> None:
    errors: list[RowError] = []
    active = list(subscribers.active_subscribers(write(tmp_path, MESSY), errors))
    assert [s.email for s in active] == ["ada@example.org", "grace@example.org"]
    assert active[0].name == "Ada Lovelace"
    assert [e.duplicate_of for e in errors if e.duplicate_of] == [2]


def test_timezone_and_further_columns_reach_the_subscriber(tmp_path: Path) -> None:
    rows = [r for r in subscribers.read_subscribers(write(tmp_path, MESSY)) if r]
    ada = rows[0]
    assert isinstance(ada, Subscriber)
    assert ada.timezone == "Europe/London"
    assert ada.extra == (("company", "Analytical Engines"), ("Favourite Colour", "green"))


def test_a_row_that_is_not_utf8_is_reported_and_the_rest_still_read(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    rows = ["email,name", "ada@example.org,Ada"]
    rows += [f"r{n}@example.org,Reader {n}" for n in range(3000)]  # past the read buffer
    latin1 = b"jose@example.org,Jos\xe9\ngrace@example.org,Grace\n"
    path.write_bytes("\n".join(rows).encode("utf-8") + b"\n" + latin1)
    items = list(subscribers.unique_subscribers(path))
    errors = [item for item in items if isinstance(item, RowError)]
    assert [(e.line, e.message) for e in errors] == [
        (3003, "not UTF-8 text; save the list as UTF-8")
    ]
    emails = [item.email for item in items if isinstance(item, Subscriber)]
    assert len(emails) == 3002 and emails[-1] == "grace@example.org"


def test_known_columns_match_in_any_letter_case(project: Path, tmp_path: Path) -> None:
    text = "\ufeffEmail,Name,Sections,Status,Company\nada@example.org,Ada,science,Active,ACME\n"
    write(project, text, "subscribers.csv")
    (ada,) = subscribers.read_subscribers(project / "subscribers.csv")
    assert isinstance(ada, Subscriber)
    assert (ada.email, ada.name, ada.sections, ada.extra) == (
        "ada@example.org",
        "Ada",
        frozenset({"science"}),
        (("Company", "ACME"),),
    )
    out = tmp_path / "export.csv"
    code, _, err = run(project, "subscribers", "export", "--out", str(out))
    assert code == 0, err
    assert out.read_text(encoding="utf-8").splitlines() == [
        "email,name,sections,status,Company",
        "ada@example.org,Ada,science,active,ACME",
    ]


def test_a_list_without_an_email_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "address,name\nada@example.org,Ada\n")
    with pytest.raises(SubscriberError, match="no 'email' column"):
        list(subscribers.read_subscribers(path))


def test_many_repeats_are_all_found(tmp_path: Path) -> None:
    lines = ["email,name"] + [f"user{i % 300}@example.org,User {i}" for i in range(1000)]
    problems: list[RowError] = []
    summary = subscribers.check(write(tmp_path, "\n".join(lines) + "\n"), problems.append)
    assert summary.duplicates == 700
    assert summary.statuses == {"active": 300}
    # Line 302 holds user0 again (line 2 is the first data row).
    assert problems[0].line == 302 and problems[0].duplicate_of == 2


def test_database_suppressions_and_preferences_beat_the_csv(project: Path) -> None:
    db = store.connect(project / "digest.db")
    audience.suppress(db, "ADA@example.org", "unsubscribed: web page")
    audience.set_preferences(db, "edsger@example.org", ["technology"])
    errors: list[RowError] = []
    rows = subscribers.active_subscribers(project / "subscribers.csv", errors)
    found = {s.email: s for s in subscribers.with_database_state(db, rows)}
    assert found["ada@example.org"].status == "unsubscribed"
    assert [e for e, s in found.items() if s.active] == ["grace@example.org", "edsger@example.org"]
    assert found["edsger@example.org"].sections == frozenset({"technology"})
    assert found["grace@example.org"].sections == frozenset({"technology"})
    assert [e.line for e in errors] == [5]
    db.close()


def run(project: Path, *args: str) -> tuple[int, str, str]:
    settings = settings_for(project)
    runner = CliRunner()
    env = {
        "DIGEST_DATABASE": str(settings.database),
        "DIGEST_SUBSCRIBERS": str(settings.subscribers),
        "DIGEST_SECRET_KEY": "test-secret-key-for-the-digest-tests",
        "DIGEST_FROM": settings.from_addr,
    }
    result = runner.invoke(
        main, ["--config", str(project / "digest.toml"), *args], env=env, catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def test_check_command_prints_problems_and_fails(project: Path, tmp_path: Path) -> None:
    path = write(tmp_path, MESSY)
    code, out, err = run(project, "subscribers", "check", str(path))
    assert code == 1
    assert f"{path}:3: invalid address" in err
    assert f"{path}:5: duplicate of line 2" in err
    assert "7 row(s): 2 active, 1 unsubscribed; 3 bad row(s), 1 duplicate(s)" in out


def test_check_names_unknown_sections(project: Path, tmp_path: Path) -> None:
    path = write(tmp_path, "email,sections\nada@example.org,technology;sceince\n")
    code, out, err = run(project, "subscribers", "check", str(path))
    assert code == 1
    assert f"{path}:2: unknown section(s) 'sceince'; known: science, technology" in err
    assert "1 with unknown sections" in out


def test_check_command_passes_a_clean_list(project: Path) -> None:
    code, out, _ = run(project, "subscribers", "check", str(ROOT_EXAMPLE))
    assert code == 0
    assert "5 row(s): 4 active, 1 unsubscribed; 0 bad row(s), 0 duplicate(s)" in out


ROOT_EXAMPLE = Path(__file__).resolve().parents[2] / "subscribers.example.csv"


def test_export_writes_current_statuses_and_sections(project: Path, tmp_path: Path) -> None:
    write(project, MESSY, "subscribers.csv")
    db = store.connect(project / "digest.db")
    audience.suppress(db, "grace@example.org", "bounced: 550 no such user")
    audience.suppress(db, "ada@example.org", "unsubscribed: one-click")
    audience.set_preferences(db, "alan@example.org", ["science", "technology"])
    db.close()
    out = tmp_path / "export.csv"
    code, _, err = run(project, "subscribers", "export", "--out", str(out))
    assert code == 0, err
    assert "3 subscriber(s) written" in err
    assert ":3: invalid address" in err
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["email"], r["status"], r["sections"]) for r in rows] == [
        ("ada@example.org", "unsubscribed", ""),
        ("grace@example.org", "bounced", "technology"),
        ("alan@example.org", "unsubscribed", "science;technology"),
    ]
    assert rows[0]["company"] == "Analytical Engines"
    assert rows[0]["Favourite Colour"] == "green"
    assert rows[0]["timezone"] == "Europe/London"


def test_export_then_import_never_mails_who_left(project: Path, tmp_path: Path) -> None:
    original = (project / "subscribers.csv").read_text(encoding="utf-8")
    db = store.connect(project / "digest.db")
    audience.suppress(db, "ada@example.org", "unsubscribed: one-click")
    db.close()
    # The operator re-imports an old list where Ada is still active.
    write(project, original, "subscribers.csv")
    db = store.connect(project / "digest.db")
    rows = subscribers.active_subscribers(project / "subscribers.csv", [])
    emails = [s.email for s in subscribers.with_database_state(db, rows) if s.active]
    db.close()
    assert "ada@example.org" not in emails and "grace@example.org" in emails


def test_unsubscribe_command_takes_addresses_and_tokens(project: Path) -> None:
    settings = settings_for(project)
    token = unsubscribe_token(
        b"test-secret-key-for-the-digest-tests",
        "the-sample-digest.example.org",
        "Grace@example.org",
    )
    code, out, _ = run(project, "subscribers", "unsubscribe", "ada@example.org", token)
    assert code == 0
    assert out.splitlines() == ["unsubscribed ada@example.org", "unsubscribed grace@example.org"]
    db = store.connect(settings.database)
    assert audience.state_of(db, "grace@example.org")[0] == "unsubscribed: by hand"
    db.close()
    code, _, err = run(project, "subscribers", "unsubscribe", "nobody")
    assert code == 1 and "neither an address nor a valid unsubscribe token" in err


def test_every_subscribers_command_has_help_with_an_example() -> None:
    group = main.commands["subscribers"]
    assert isinstance(group, click.Group)
    for name in sorted(group.commands):
        result = CliRunner().invoke(main, ["subscribers", name, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name


def test_serve_command_runs_until_interrupted(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(PYTHONUNBUFFERED="1", DIGEST_SECRET_KEY="test-secret-key-for-the-digest-tests")
    command = [sys.executable, "-m", "digest", "--config", str(project / "digest.toml")]
    process = subprocess.Popen(
        [*command, "serve", "--port", "0"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"Serving on (http://127\.0\.0\.1:\d+) ", line)
        assert found, line + (process.stderr.read() if process.stderr else "")
        assert httpx.get(f"{found.group(1)}/healthz", timeout=10).text == "ok\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_semicolon_separated_header_is_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, "email;name;sections\nada@example.org;Ada;\n")
    with pytest.raises(SubscriberError, match=r":1: the header line looks ';'-separated"):
        list(subscribers.read_subscribers(path))


def test_short_and_long_rows_read_as_their_header_says(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "email,name,sections,Company\nada@example.org,Ada\ngrace@example.org,Grace,,Navy,extra\n",
    )
    ada, grace = subscribers.read_subscribers(path)
    assert isinstance(ada, Subscriber) and isinstance(grace, Subscriber)
    assert (ada.name, ada.sections, ada.extra) == ("Ada", frozenset(), (("Company", ""),))
    assert (grace.name, grace.extra) == ("Grace", (("Company", "Navy"),))
