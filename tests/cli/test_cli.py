"""The command line: help everywhere, and the commands end to end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from digest.cli import main
from tests.conftest import ROOT

COMMANDS = sorted(main.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output


def test_group_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("collect", "build", "send", "status"):
        assert name in result.output


def _leaf_commands(group: click.Group, prefix: str) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _leaf_commands(command, f"{prefix} {name}")
        else:
            found.append((f"{prefix} {name}", command))
    return found


def test_readme_documents_every_command_and_option() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for option in (o for p in main.params for o in p.opts if o.startswith("--")):
        assert option in readme, option
    for name, command in _leaf_commands(main, "digest"):
        assert f"`{name}" in readme, name
        for option in (o for p in command.params for o in p.opts if o.startswith("--")):
            assert option == "--help" or option in readme, f"{name} {option}"


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["DIGEST_SUBSCRIBERS"] = "subscribers.csv"
    env["DIGEST_SECRET_KEY"] = "cli-test-secret-key-for-the-digest-cli"
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_m_digest_send_then_status(project: Path) -> None:
    sent = cli(project, "send")
    assert sent.returncode == 0, sent.stderr
    assert "Sent edition" in sent.stdout and "3 sent" in sent.stdout
    assert "outbox" in sent.stdout
    assert f"files in {project / 'outbox' / 'new'}" in sent.stdout
    assert "subscribers.csv:5" in sent.stderr
    status = cli(project, "status", "--json")
    report = json.loads(status.stdout)
    assert report["editions"][0]["deliveries"] == {"sent": 3}
    assert report["last_edition"]["deliveries"] == {"sent": 3}
    again = cli(project, "send")
    assert "Nothing new" in again.stdout


def test_build_with_source_writes_three_files(project: Path) -> None:
    result = cli(project, "build", "--source", "samples/science", "--out", "built")
    assert result.returncode == 0, result.stderr
    edition = json.loads((project / "built" / "edition.json").read_text())
    assert len(edition["sections"][0]["articles"]) == 3
    assert (project / "built" / "digest.html").read_text().startswith("<!doctype html>")
    assert "City Trees Cool Streets" in (project / "built" / "digest.txt").read_text()
    assert not (project / "digest.db").exists() or cli(project, "status").returncode == 0


def test_build_edition_renders_an_edited_edition_file(project: Path) -> None:
    assert cli(project, "build", "--out", "built").returncode == 0
    path = project / "built" / "edition.json"
    edition = json.loads(path.read_text(encoding="utf-8"))
    edition["sections"][0]["articles"][0]["summary"] = ["An editor rewrote this summary."]
    path.write_text(json.dumps(edition), encoding="utf-8")
    result = cli(project, "build", "--edition", "built/edition.json", "--out", "again")
    assert result.returncode == 0, result.stderr
    assert "An editor rewrote this summary." in (project / "again" / "digest.txt").read_text()
    assert "An editor rewrote this summary." in (project / "again" / "digest.html").read_text()


def test_invalid_setting_is_one_line_and_non_zero(project: Path) -> None:
    env_file = project / "bad.env"
    env_file.write_text("DIGEST_SMTP_SECURITY=tls\n")
    result = cli(project, "--env-file", "bad.env", "status")
    assert result.returncode != 0
    assert "DIGEST_SMTP_SECURITY" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_sends_nothing(project: Path) -> None:
    result = cli(project, "send", "--dry-run")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["to_send"] == 3
    assert not (project / "outbox").exists()


def test_root_has_the_example_subscribers() -> None:
    assert (ROOT / "subscribers.example.csv").read_text().startswith("email,name,sections,status")
    assert isinstance(main, click.Group)


def test_send_on_a_terminal_shows_a_progress_bar_with_rate_and_eta(project: Path) -> None:
    # A real pseudo-terminal on stderr: click draws the bar only on a tty.
    # The rate limit makes the send last about three seconds, long enough
    # for click to estimate the time left (it does so once a second).
    rows = "".join(f"r{n}@example.org,R\n" for n in range(600))
    (project / "subscribers.csv").write_text("email,name\n" + rows, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_SUBSCRIBERS="subscribers.csv",
        DIGEST_SECRET_KEY="bar-secret-key-of-thirty-two-bytes",
        DIGEST_RATE_PER_SECOND="200",
        COLUMNS="120",
    )
    main_end, terminal = os.openpty()
    sender = subprocess.Popen(
        [sys.executable, "-m", "digest", "send"],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main_end, 4096)
        except OSError:  # the terminal closed: the sender has exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_end)
    assert sender.stdout is not None
    out = sender.stdout.read().decode()
    assert sender.wait(timeout=60) == 0, shown.decode(errors="replace")
    assert "600 sent" in out
    screen = shown.decode(errors="replace")
    assert "Sending" in screen and "600/600" in screen
    # position, then the time left (ETA), then the rate
    assert re.search(r"\d+/600  \d\d:\d\d:\d\d  \d+ msg/s", screen), screen


def test_build_from_sources_that_all_fail_exits_non_zero(project: Path) -> None:
    result = cli(project, "build", "--source", "no/such/folder", "--out", "built")
    assert result.returncode != 0
    assert "no/such/folder" in result.stderr
    assert "no article could be read" in result.stderr
