"""A bad row is that row's problem: oversized, unterminated, NUL, CR/LF and
international rows in a real list, read by every command, sent to a real
SMTP server and into a real Maildir; and properties of the CSV reader and
of the headers built from the list (hypothesis)."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import re
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from digest import job, store
from digest.cli import main
from digest.deliver import subscribers
from digest.deliver.csvrows import MAX_ROW_CHARS, guard, open_list, records
from digest.deliver.message import envelope_address, header_safe, mailbox
from digest.deliver.subscribers import RowError
from digest.errors import SubscriberError
from tests.conftest import settings_for
from tests.smtp_server import RecordingHandler, serving

HEADER = "email,name,sections,status\n"


def write(tmp_path: Path, text: str, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


def read(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line, address) of good rows and (line, message) of bad ones."""
    good, bad = [], []
    for item in subscribers.unique_subscribers(path):
        if isinstance(item, RowError):
            bad.append((item.line, item.message))
        else:
            good.append((item.line, item.email))
    return good, bad


def test_an_oversized_cell_costs_its_row_only(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "a@example.org,A,,\n"
        + f"b@example.org,{'N' * 200_000},,\n"
        + "c@example.org,C,,\n",
    )
    good, bad = read(path)
    assert good == [(2, "a@example.org"), (4, "c@example.org")]
    assert bad == [(3, f"the row is longer than {MAX_ROW_CHARS:,} characters; shorten it")]


def test_an_unterminated_quote_is_reported_and_the_rows_after_it_are_read(
    tmp_path: Path,
) -> None:
    rows = "".join(f"r{n}@example.org,R{n},,\n" for n in range(5))
    path = write(tmp_path, HEADER + 'q@example.org,"Quote never closed,,\n' + rows)
    good, bad = read(path)
    assert good == [(n + 3, f"r{n}@example.org") for n in range(5)]
    assert bad == [(2, 'a quote (") opened on this line is never closed; close it or remove it')]


def test_an_unterminated_quote_far_from_the_end_is_bounded(tmp_path: Path) -> None:
    rows = "".join(f"r{n}@example.org,R{n},,\n" for n in range(300))
    path = write(tmp_path, HEADER + 'q@example.org,"open\n' + rows)
    good, bad = read(path)
    assert len(good) == 300 and bad[0][0] == 2 and len(bad) == 1


def test_a_quoted_cell_may_hold_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + 'a@example.org,"Ada\r\nLovelace",,\nb@example.org,B,,\n')
    (ada, grace) = list(subscribers.unique_subscribers(path))
    assert not isinstance(ada, RowError) and ada.name == "Ada\r\nLovelace" and ada.line == 2
    assert not isinstance(grace, RowError) and grace.line == 4


def test_nul_bad_bytes_and_crlf_in_an_address_are_reported_by_line(tmp_path: Path) -> None:
    text = (
        HEADER
        + "a@example.org,A,,\n"
        + "n\x00ul@example.org,Nul,,\n"
        + "b\udcffad@example.org,Bytes,,\n"
        + '"c@example.org\r\nBcc: x@evil.example",Crlf,,\n'
        + "d@example.org,D,,\n"
    )
    good, bad = read(write(tmp_path, text))
    assert good == [(2, "a@example.org"), (7, "d@example.org")]
    assert [line for line, _ in bad] == [3, 4, 5]


def test_export_neutralises_formulas_and_reads_back_the_same(project: Path) -> None:
    tmp_path = project
    path = write(
        tmp_path,
        "email,name,sections,status,Note\n"
        + '-minus@example.org,=HYPERLINK("http://evil.example"),,active,+1\n'
        + "b@example.org,@SUM(A1),,active,-Tab\n",
    )
    settings = settings_for(tmp_path, DIGEST_SUBSCRIBERS=str(path))
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main,
        [
            "--database",
            str(settings.database),
            "--subscribers",
            str(path),
            "subscribers",
            "export",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    cells = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert cells[1][:2] == ["'-minus@example.org", '\'=HYPERLINK("http://evil.example")']
    assert cells[1][-1] == "'+1" and cells[2][1] == "'@SUM(A1)" and cells[2][-1] == "'-Tab"
    (minus, b) = [s for s in subscribers.unique_subscribers(out) if not isinstance(s, RowError)]
    assert minus.email == "-minus@example.org" and minus.name.startswith("=HYPERLINK")
    assert dict(b.extra)["Note"] == "-Tab"


HOSTILE_ROWS = [
    "jörg@example.org,Jörg,,",  # needs SMTPUTF8
    "x@example.org," + "N" * 200_000 + ",,",  # oversized
    "n\x00@example.org,Nul,,",
    '"cr@example.org\r\nBcc: evil@example.org",Crlf,,',
    "not-an-address,Broken,,",
]


def hostile_list(tmp_path: Path) -> tuple[Path, list[str], list[int]]:
    """1,000 rows, 20 of them hostile: the good addresses and the bad lines."""
    lines, good, bad = [HEADER.strip()], [], []
    for n in range(1000):
        line_number = len(lines) + 1 + sum(row.count("\r\n") for row in lines[1:])
        if n % 50 == 7:
            lines.append(HOSTILE_ROWS[(n // 50) % len(HOSTILE_ROWS)])
            bad.append(line_number)
        else:
            lines.append(f"reader{n}@example.org,Reader {n},,")
            good.append(f"reader{n}@example.org")
    lines.insert(3, "user@münchen.example,IDN,,")  # an international domain is fine
    bad = [b + 1 if b > 3 else b for b in bad]
    good.append("user@xn--mnchen-3ya.example")
    return write(tmp_path, "\n".join(lines) + "\n", "subscribers.csv"), good, bad


def test_a_send_over_a_list_with_hostile_rows_delivers_every_good_row_once(
    project: Path,
) -> None:
    path, good, bad = hostile_list(project)
    handler = RecordingHandler()
    with serving(handler, enable_SMTPUTF8=False) as controller:
        env = {
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(controller.port),
            "DIGEST_SMTP_SECURITY": "none",
            "DIGEST_SUBSCRIBERS": str(path),
            "DIGEST_DATABASE": str(project / "digest.db"),
        }
        result = CliRunner().invoke(
            main,
            ["--config", str(project / "digest.toml"), "send"],
            env={**settings_env(project), **env},
        )
    assert result.exit_code == 0, result.output
    delivered = sorted(r for _, rcpts, _ in handler.messages for r in rcpts)
    assert delivered == sorted(good)  # each good row exactly once
    reported = {int(n) for n in re.findall(r"subscribers\.csv:(\d+):", result.output)}
    assert reported >= set(bad)
    assert "Traceback" not in result.output
    assert f"{path}:{bad[0]}: needs SMTPUTF8 (the server does not offer it); left pending" in (
        result.output
    )


def settings_env(project: Path) -> dict[str, str]:
    return {
        "DIGEST_FROM": "The Sample Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "k" * 32,
        "DIGEST_OUTBOX": str(project / "outbox"),
        "DIGEST_BASE_URL": "https://digest.example.org",
    }


def international(project: Path) -> Path:
    return write(
        project,
        HEADER
        + "jörg@example.org,Jörg Müller,,\nuser@münchen.example,Ü,,\nada@example.org,Ada,,\n",
        "subscribers.csv",
    )


def test_smtputf8_server_gets_international_addresses(project: Path) -> None:
    international(project)
    handler = RecordingHandler()
    with serving(handler, enable_SMTPUTF8=True) as controller:
        env = {
            "DIGEST_SMTP_HOST": "127.0.0.1",
            "DIGEST_SMTP_PORT": str(controller.port),
            "DIGEST_SMTP_SECURITY": "none",
        }
        result = job.send(settings_for(project, **env))
    assert result.report.counts == {"sent": 3}
    to = sorted(r for _, rcpts, _ in handler.messages for r in rcpts)
    assert to == ["ada@example.org", "jörg@example.org", "user@xn--mnchen-3ya.example"]
    parsed = {str(m["To"]) for m in handler.parsed()}
    assert "Jörg Müller <jörg@example.org>" in parsed


def test_without_smtputf8_such_a_row_is_reported_and_left_pending(project: Path) -> None:
    path = international(project)
    result = job.send(settings_for(project))  # the Maildir: no SMTPUTF8 there
    assert result.report.counts == {"sent": 2, "pending": 1}
    assert [str(e) for e in result.delivered.row_errors] == [
        f"{path}:2: needs SMTPUTF8 (a Maildir cannot take it); left pending"
    ]
    db = store.connect(project / "digest.db")
    status = db.scalar("SELECT status FROM deliveries WHERE email = 'jörg@example.org'")
    db.close()
    assert status == "pending"
    # The next send tries it again, and says so again.
    again = job.send(settings_for(project))
    assert again.report.counts == {"pending": 1}


def test_a_test_copy_to_an_international_address_is_refused_cleanly(project: Path) -> None:
    international(project)
    result = CliRunner().invoke(
        main,
        ["--config", str(project / "digest.toml"), "send", "--to", "jörg@example.org"],
        env={
            **settings_env(project),
            "DIGEST_DATABASE": str(project / "digest.db"),
            "DIGEST_SUBSCRIBERS": str(project / "subscribers.csv"),
        },
    )
    assert result.exit_code == 1
    assert "needs SMTPUTF8" in result.output and "Traceback" not in result.output


def test_a_long_name_is_folded_within_the_line_limit(project: Path) -> None:
    write(project, HEADER + f"ada@example.org,{'Ada ' * 375},,\n", "subscribers.csv")
    job.send(settings_for(project))
    (message,) = list((project / "outbox" / "new").iterdir())
    raw = message.read_bytes()
    head = raw.split(b"\n\n", 1)[0].decode()
    assert max(len(line) for line in head.split("\n")) <= 998
    to = head[head.index("\nTo: ") + 1 :].split("\nDate:")[0]
    assert len(to.split("\n")) > 10 and max(len(line) for line in to.split("\n")) <= 78
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name.split() == ["Ada"] * 375


# Properties


CELL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(st.lists(st.lists(CELL, min_size=4, max_size=4), max_size=20))
@example([["", "'=x", "''+", "'a"]])  # cells that only look guarded
def test_any_rows_written_as_csv_read_back_as_written(rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["email", "name", "sections", "status"])
    for row in rows:
        writer.writerow([guard(cell) for cell in row])
    read_back = [
        item[1]
        for item in records(io.StringIO(buffer.getvalue(), newline=""), Path("p.csv"))
        if not isinstance(item, RowError)
    ]
    expected = [["email", "name", "sections", "status"]] + [r for r in rows if r != [""] * 4]
    # A row of four empty cells is a line of three commas: still a row.
    assert [r for r in read_back if r != [""] * 4] == [r for r in expected if r != [""] * 4]


@given(st.binary(max_size=400))
def test_any_bytes_give_rows_or_row_errors_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("csv") / "list.csv"
    path.write_bytes(b"email,name\n" + data)
    total = data.count(b"\n") + data.count(b"\r") + 2
    for item in subscribers.unique_subscribers(path):
        assert 2 <= item.line <= total


@given(st.text(max_size=300), st.emails())
def test_headers_built_from_any_name_stay_within_the_limits(name: str, address: str) -> None:
    value = mailbox(name, envelope_address(address))
    header = f"To: {value}\r\n".encode()
    lines = header.split(b"\r\n")[:-1]
    assert all(len(line) <= 998 for line in lines)
    assert all(line.startswith(b" ") for line in lines[1:])  # folded, never a new header
    assert b"\r" not in b"".join(lines) and b"\n" not in b"".join(lines)
    parsed = email.message_from_bytes(header + b"\r\n", policy=email.policy.default)
    shown = parsed["To"].addresses[0].display_name
    # Python's parser keeps a space between two encoded words (RFC 2047 says
    # to drop it); the words themselves must all be there.
    assert "".join(shown.split()) == "".join(header_safe(name).split())
    if value.startswith("=?"):  # an RFC-exact decoder gives the name back exactly
        assert str(make_header(decode_header(value.rsplit(" <", 1)[0]))) == header_safe(name)


def test_an_unreadable_header_line_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match=r"list\.csv:1: unreadable header line"):
        list(subscribers.unique_subscribers(write(tmp_path, '"email,name\n')))
    with open_list(write(tmp_path, "email\n")) as handle:
        assert list(records(handle, Path("x"))) == [(1, ["email"])]


@given(st.text(st.sampled_from(list("ab ,\"'\r\n=")), max_size=200))
def test_rows_without_a_quote_read_as_the_csv_module_reads_them(text: str) -> None:
    # Rows without a quote skip the csv module (a split at each comma): both
    # ways must give the same cells and first lines wherever both read it
    # (an unclosed quote is an error here, a cell to the end for csv).
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        expected, start = [], 1
        for row in reader:
            if row:
                guarded = [c.startswith("'") and c.lstrip("'").startswith("=") for c in row]
                expected.append((start, [c[g:] for c, g in zip(row, guarded, strict=True)]))
            start = reader.line_num + 1
    except csv.Error:
        return
    got = list(records(io.StringIO(text, newline=""), Path("p.csv")))
    if not any(isinstance(item, RowError) for item in got):
        assert got == expected
