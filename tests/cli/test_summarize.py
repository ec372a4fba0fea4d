"""`digest summarize`: article files and JSONL rows, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from digest.cli import main
from digest.summarize.sentences import split_sentences
from tests.conftest import ROOT

BATTERIES = ROOT / "samples" / "technology" / "solid-state-batteries.txt"


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["summarize", *args], input=stdin)
    return result.exit_code, result.output


def test_files_print_title_summary_and_key_points() -> None:
    code, output = run(str(BATTERIES), "--sentences", "1")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "# Solid-State Batteries Leave the Lab for the Factory Floor"
    assert lines[1] in split_sentences(BATTERIES.read_text(encoding="utf-8"))
    assert any(line.startswith("  What Changed This Year: ") for line in lines)
    assert "    - Pilot cells reach 80 percent charge in 12 minutes." in lines


def test_jsonl_rows_from_stdin_to_stdout(tmp_path: Path) -> None:
    article = BATTERIES.read_text(encoding="utf-8")
    rows = "\n".join(json.dumps({"id": f"r{i}", "article": article}) for i in range(2))
    code, output = run("--jsonl", "-", "--sentences", "3", "--words", "0", stdin=rows)
    assert code == 0, output
    out = [json.loads(line) for line in output.splitlines()]
    assert [r["id"] for r in out] == ["r0", "r1"]
    assert all(len(r["summary"]) == 3 for r in out)


def test_bad_jsonl_row_is_one_line_and_non_zero() -> None:
    code, output = run("--jsonl", "-", stdin='{"id": "x"}\n')
    assert code != 0
    assert 'line 1: each row needs "id" and "article"' in output


def test_missing_file_is_one_line_and_non_zero(tmp_path: Path) -> None:
    code, output = run(str(tmp_path / "nope.txt"))
    assert code != 0
    assert "nope.txt" in output and "Traceback" not in output


def test_no_files_and_no_jsonl_is_a_usage_error() -> None:
    code, output = run()
    assert code == 2
    assert "--jsonl" in output
