"""Fault benchmark: a send against a misbehaving SMTP server, every figure
against a clean send measured in the same run.

    .venv/bin/python bench/faults.py [--rows 2000] [--greylist 60] [--busy 15]

- clean: ROWS subscribers through aiosmtpd with PIPELINING (the baseline).
- greylist: the server refuses each new address with 451 for GREYLIST
  seconds (as a greylisting server does); DIGEST_RETRY_DELAY is set to the
  greylist time, as an operator whose server greylists would set it. Target:
  about the greylist time plus the clean send, not the 35 minutes of a pool
  that paused every connection for each 451.
- busy: for the first BUSY seconds the server answers MAIL with 421 and
  closes (under PIPELINING, so MAIL, RCPT and DATA were already written).
  The pool pauses DIGEST_RETRY_DELAY (5 s), doubling while the server says
  it again after a pause, so it may resume up to one pause after the server
  does. Target: within twice the busy time plus the clean send (the issue
  saw 171 s for 15 s busy); and a server busy for good: the send gives up
  after its pauses, the deliveries it tried recorded with the 421.
- hostile list: 1,000 rows of which 20 are hostile (non-ASCII local part,
  200,000-character cell, NUL, CR/LF in a quoted address, bad syntax) sent
  with `digest send`: every good row delivered once, every bad row reported
  by line, exit status 0.

The server runs in its own process (this file with --serve); each send in
this process, one after the other, each in a fresh project folder.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.send import make_project  # noqa: E402


def serve(mode: str, seconds: float, port_file: Path) -> None:
    """The SMTP server: aiosmtpd with PIPELINING, greylisting or busy."""
    from tests.smtp_server import Fault, Faults, GreylistHandler, ScriptedHandler, serving

    handler: Any = (
        GreylistHandler(seconds, pipelining=True)
        if mode == "greylist"
        else ScriptedHandler(pipelining=True)
    )
    faults = Faults()
    if mode == "busy":
        faults.busy("MAIL", Fault("421 4.7.0 Too busy, closing", close=True), seconds)
    # No SMTPUTF8: the hostile list's non-ASCII address must wait, reported.
    kwargs = {"data_size_limit": 10_000_000, "enable_SMTPUTF8": False}
    with serving(handler, faults, **kwargs) as controller:
        port_file.with_suffix(".tmp").write_text(str(controller.port))
        port_file.with_suffix(".tmp").rename(port_file)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        print(len(handler.messages), flush=True)


class Server:
    """`bench/faults.py --serve MODE SECONDS PORT_FILE` in another process."""

    def __init__(self, folder: Path, mode: str, seconds: float = 0.0) -> None:
        port_file = Path(tempfile.mkdtemp(dir=folder)) / f"{mode}.port"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, str(seconds), str(port_file)],
            stdout=subprocess.PIPE,
            text=True,
        )
        while not port_file.exists():
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def stop(self) -> int:
        """Stop it; the number of messages it received."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        return int(out.strip() or 0)


def env_for(folder: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "DIGEST_DATABASE": str(folder / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(folder / "subscribers.csv"),
        "DIGEST_FROM": "The Bench Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "bench-secret-" + "k" * 32,
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        **extra,
    }


def timed_send(folder: Path, port: int, **extra: str) -> tuple[float, dict[str, int], Any]:
    from digest import job, store
    from digest.config import load_settings

    settings = load_settings(folder / "digest.toml", environ=env_for(folder, port, **extra))
    start = time.monotonic()
    result = job.send(settings)
    elapsed = time.monotonic() - start
    db = store.connect(settings.database)
    try:
        rows = db.all("SELECT status, attempts, last_reply FROM deliveries")
    finally:
        db.close()
    return elapsed, dict(result.report.counts), rows


def run_fault(base: Path, rows: int, mode: str, seconds: float, **extra: str) -> dict[str, Any]:
    folder = make_project(base / mode, rows)
    server = Server(base, mode, seconds)
    try:
        elapsed, counts, ledger = timed_send(folder, server.port, **extra)
    finally:
        received = server.stop()
    attempts: dict[int, int] = {}
    for row in ledger:
        attempts[row["attempts"]] = attempts.get(row["attempts"], 0) + 1
    return {"seconds": elapsed, "counts": counts, "received": received, "attempts": attempts}


def recorded_as_421(base: Path, rows: int) -> tuple[int, int, str]:
    """A server that never stops answering MAIL with 421-then-close: the
    send gives up after its pauses; what does the ledger keep?"""
    folder = make_project(base / "busy-always", rows)
    server = Server(base, "busy", 3600)
    error = ""
    try:
        _, _, ledger = timed_send(folder, server.port, DIGEST_RETRY_DELAY="0.05")
    except Exception as e:  # the DeliveryError this is about
        error = str(e)
        from digest import store

        db = store.connect(folder / "digest.db")
        ledger = db.all("SELECT status, attempts, last_reply FROM deliveries")
        db.close()
    finally:
        server.stop()
    deferred = [row for row in ledger if row["status"] == "deferred"]
    found = sum(1 for row in deferred if re.match(r"MAIL: 421 ", row["last_reply"]))
    return found, len(deferred), error


HOSTILE = [
    "jörg@example.org,Jörg,,",
    "big@example.org," + "N" * 200_000 + ",,",
    "n\x00ul@example.org,Nul,,",
    '"cr@example.org\r\nBcc: evil@example.org",Crlf,,',
    "not-an-address,Broken,,",
]


def hostile_list(path: Path) -> tuple[set[str], set[int]]:
    """1,000 rows, 20 hostile; returns the good addresses and the bad lines."""
    lines, good, bad, line = ["email,name,sections,status"], set(), set(), 2
    for n in range(1000):
        if n % 50 == 7:
            row = HOSTILE[(n // 50) % len(HOSTILE)]
            bad.add(line)
        else:
            row = f"reader{n}@example.org,Reader {n},,"
            good.add(f"reader{n}@example.org")
        lines.append(row)
        line += 1 + row.count("\r\n")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return good, bad


def run_hostile(base: Path) -> dict[str, Any]:
    folder = make_project(base / "hostile", 1)
    good, bad = hostile_list(folder / "subscribers.csv")
    server = Server(base, "clean")
    env = env_for(folder, server.port)
    try:
        start = time.monotonic()
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("digest")),
                "--config",
                str(folder / "digest.toml"),
                "send",
            ],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.monotonic() - start
    finally:
        received = server.stop()
    reported = {int(n) for n in re.findall(r"subscribers\.csv:(\d+):", done.stderr)}
    return {
        "seconds": elapsed,
        "exit": done.returncode,
        "good": len(good),
        "received": received,
        "bad": len(bad),
        "reported": len(reported & bad),
        "traceback": "Traceback" in done.stderr + done.stdout,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--greylist", type=float, default=60.0)
    parser.add_argument("--busy", type=float, default=15.0)
    parser.add_argument("--serve", nargs=3, metavar=("MODE", "SECONDS", "PORT_FILE"))
    args = parser.parse_args(argv)
    if args.serve:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        serve(args.serve[0], float(args.serve[1]), Path(args.serve[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report(Path(tmp), args)


def report(base: Path, args: argparse.Namespace) -> None:
    rows, grey, busy = args.rows, args.greylist, args.busy
    print(f"{rows} subscribers, aiosmtpd with PIPELINING in its own process")
    clean = run_fault(base, rows, "clean", 0.0)
    print(f"clean send (baseline):  {clean['seconds']:7.1f} s  {clean['counts']}")
    greylisted = run_fault(base, rows, "greylist", grey, DIGEST_RETRY_DELAY=f"{grey:g}")
    target = grey + clean["seconds"]
    print(
        f"greylist {grey:g} s:         {greylisted['seconds']:7.1f} s  {greylisted['counts']}"
        f"  tries {greylisted['attempts']}  received {greylisted['received']}"
    )
    busy_run = run_fault(base, rows, "busy", busy, DIGEST_MAX_ATTEMPTS="5")
    print(
        f"421-then-close {busy:g} s:    {busy_run['seconds']:7.1f} s  {busy_run['counts']}"
        f"  tries {busy_run['attempts']}  received {busy_run['received']}"
    )
    as_421, deferred, gave_up = recorded_as_421(base, 200)
    print(f"always busy: {gave_up}")
    hostile = run_hostile(base)
    print(
        f"hostile list: exit {hostile['exit']}, {hostile['received']} of {hostile['good']} good"
        f" rows received, {hostile['reported']} of {hostile['bad']} bad rows reported by line,"
        f" {hostile['seconds']:.1f} s"
    )
    grey_ratio = greylisted["seconds"] / target
    busy_ratio = busy_run["seconds"] / (busy + clean["seconds"])
    print(f"greylist / (greylist + clean) = {grey_ratio:.2f}")
    print(f"busy / (busy + clean)         = {busy_ratio:.2f}")
    checks = [
        (
            f"greylisted send <= 1.5 x (greylist + clean) ({grey_ratio:.2f})",
            grey_ratio <= 1.5
            and greylisted["counts"] == {"sent": rows}
            and greylisted["received"] == rows,
        ),
        (
            f"421-then-close send <= 2 x (busy + clean) ({busy_ratio:.2f})",
            busy_ratio <= 2.0
            and busy_run["counts"] == {"sent": rows}
            and busy_run["received"] == rows,
        ),
        (
            f"421s recorded as 421 ({as_421} of {deferred} deferred)",
            deferred > 0 and as_421 == deferred,
        ),
        (
            "hostile list: every good row once, every bad row by line, exit 0",
            hostile["exit"] == 0
            and hostile["received"] == hostile["good"]
            and hostile["reported"] == hostile["bad"]
            and not hostile["traceback"],
        ),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main(sys.argv[1:])
