"""Past one machine, every figure in one run (issue 13):

    .venv/bin/python bench/scale.py [--rate 200] [--per-worker 3000]
        [--crash-messages 30000] [--fanout-rows 1000000] [--dkim-messages 20000]
        [--dkim-rounds 3] [--sign-rounds 300] [--smtp-sink PATH] [--only SECTION ...]

- workers: an edition (of one short article) fanned out to the PostgreSQL
  ledger, sent by 1, 2 and 3 `digest worker --once` processes, each limited
  to --rate messages a second (a relay's limit per host) and sending through
  a relay of its own (an aiosmtpd process recording every message); the rate
  is measured at the relays, and every subscriber must have exactly one
  message. Target: N workers reach at least 0.9 x N x one worker's rate.
- crash: three workers on a --crash-messages send; one is SIGKILLed midway;
  the other two finish without an operator. Target: everyone gets exactly
  one message but the killed worker's in-flight rows, which keep their
  Message-ID.
- fanout: --fanout-rows subscribers from a CSV into the PostgreSQL ledger
  (read, validate, de-duplicate, decide each copy, write by COPY) against a
  bare COPY of the same rows into the same empty ledger (the rows read back,
  the ledger truncated, the rows COPYd in one go). Targets: at least half
  the bare COPY's speed, peak memory under 150 MB.
- dkim (bench/scale_dkim.py; needs no PostgreSQL): --dkim-messages signed
  with rsa-2048 against the same send unsigned, to one Postfix smtp-sink,
  best of --dkim-rounds each; each signature's cost against dkimpy's.
  Target: the signed send reaches at least half the unsigned rate.

A throwaway PostgreSQL cluster (Debian's initdb and pg_ctl) is started for
the run, as the tests do; each measurement runs in its own processes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_dkim import measure_dkim  # noqa: E402
from bench.scale_dkim import verdict as dkim_verdict  # noqa: E402
from tests.postgres import Cluster, binaries  # noqa: E402

SECRET = "bench-scale-secret-key-for-the-scale-bench"


def smtp_servers(
    folder: Path, processes: int = 2
) -> tuple[int, Path, list[subprocess.Popen[bytes]]]:
    """aiosmtpd processes sharing one port, recording rcpt, Message-ID and time."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = folder / "received.db"
    first = folder / "port-0"
    running = [_server(first, counts, 0)]
    port = _wait_port(first)
    for n in range(1, processes):
        other = folder / f"port-{n}"
        running.append(_server(other, counts, port))
        _wait_port(other)
    return port, counts, running


def _server(port_file: Path, counts: Path, share: int) -> subprocess.Popen[bytes]:
    script = str(ROOT / "tests" / "smtp_process.py")
    args = [sys.executable, script, str(port_file), "--count", str(counts), "--port", str(share)]
    return subprocess.Popen(args, stderr=subprocess.DEVNULL)


def _wait_port(port_file: Path) -> int:
    deadline = time.monotonic() + 30
    while not port_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("an SMTP server did not start")
        time.sleep(0.05)
    return int(port_file.read_text())


def received(counts: Path) -> list[tuple[str, str, float]]:
    db = sqlite3.connect(counts)
    try:
        return list(db.execute("SELECT rcpt, message_id, at FROM received"))
    finally:
        db.close()


def project(folder: Path, readers: int, short: bool = False) -> Path:
    """The sample articles (with `short`, one of them: a small message, so
    the relays' own work does not hide the workers'), a digest.toml and a
    list of `readers`."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-r", str(ROOT / "samples"), str(folder)], check=True)
    if short:
        kept = folder / "samples" / "technology" / "quiet-keyboards.md"
        for article in (folder / "samples").rglob("*.*"):
            if article != kept:
                article.unlink()
    (folder / "digest.toml").write_text((ROOT / "digest.toml").read_text(), "utf-8")
    with (folder / "list.csv").open("w", encoding="utf-8") as handle:
        handle.write("email,name,sections,status\n")
        for n in range(readers):
            handle.write(f"reader{n:07}@example.org,Reader {n},,active\n")
    return folder


def environment(database: str, port: int, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE": database,
        "DIGEST_SUBSCRIBERS": "list.csv",
        "DIGEST_FROM": "The Bench Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": SECRET,
        "DIGEST_BASE_URL": "https://digest.example.org",
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_LOG_LEVEL": "warning",
        **extra,
    }


def fan_out_only(folder: Path, env: dict[str, str]) -> None:
    """Record and fan out an edition without sending it: its SMTP server is down."""
    down = {**env, "DIGEST_SMTP_PORT": "9"}
    done = subprocess.run(
        [sys.executable, "-m", "digest", "send"],
        cwd=folder,
        env=down,
        capture_output=True,
        text=True,
    )
    if "cannot reach SMTP server" not in done.stderr:
        raise SystemExit(f"fan-out failed: {done.stderr}")


def workers(count: int, folder: Path, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "worker", "--once"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def measure_workers(cluster: Cluster, base: Path, rate: float, per_worker: int) -> dict[str, Any]:
    """1, 2 and 3 workers, each at `rate` messages a second through a relay of
    its own (an aiosmtpd process per worker, as each host has its own)."""
    results: dict[str, Any] = {}
    for count in (1, 2, 3):
        readers = per_worker * count
        folder = project(base / f"workers-{count}", readers, short=True)
        relays = [smtp_servers(folder / f"relay-{n}", 1) for n in range(count)]
        counts = [found for _, found, _ in relays]
        try:
            env = environment(cluster.database(), relays[0][0], DIGEST_RATE_PER_SECOND=str(rate))
            fan_out_only(folder, env)
            running = [
                workers(1, folder, {**env, "DIGEST_SMTP_PORT": str(port)})[0]
                for port, _, _ in relays
            ]
            for process in running:
                process.wait(600)
            got = [row for found in counts for row in received(found)]
        finally:
            for _, _, servers in relays:
                for server in servers:
                    server.terminate()
                    server.wait(30)
        per_reader = Counter(rcpt for rcpt, _, _ in got)
        times = sorted(at for _, _, at in got)
        results[str(count)] = {
            "messages": len(got),
            "readers": readers,
            "exactly_once": len(per_reader) == readers and set(per_reader.values()) == {1},
            "rate": round((len(times) - 1) / (times[-1] - times[0]), 1),
        }
    one = results["1"]["rate"]
    for count in ("2", "3"):
        results[count]["ratio_to_one"] = round(results[count]["rate"] / one, 2)
    return results


def measure_crash(cluster: Cluster, base: Path, messages: int) -> dict[str, Any]:
    """Three workers; one is killed midway; the other two finish."""
    folder = project(base / "crash", messages)
    port, counts, servers = smtp_servers(folder)
    try:
        database = cluster.database()
        env = environment(database, port, DIGEST_WORKER_TIMEOUT="5")
        fan_out_only(folder, env)
        started = time.monotonic()
        running = workers(3, folder, env)
        while len(received(counts)) < messages // 3:
            time.sleep(0.05)
        running[0].send_signal(signal.SIGKILL)
        held = _held_by(database, running[0].pid)
        for process in running[1:]:
            process.wait(900)
        # --once workers may exit before the killed worker's rows come back.
        while _open_rows(database):
            subprocess.run(
                [sys.executable, "-m", "digest", "worker", "--once"],
                cwd=folder,
                env=env,
                check=True,
            )
        elapsed = time.monotonic() - started
        got = received(counts)
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
    mids: dict[str, set[str]] = {}
    per_reader: Counter[str] = Counter()
    for rcpt, mid, _ in got:
        per_reader[rcpt] += 1
        mids.setdefault(rcpt, set()).add(mid)
    repeated = {r for r, n in per_reader.items() if n > 1}
    return {
        "messages": messages,
        "received": len(got),
        "everyone": len(per_reader) == messages,
        "repeated": len(repeated),
        "held_by_killed_worker": len(held),
        "repeated_only_in_flight": repeated <= held,
        "same_message_id": all(len(found) == 1 for found in mids.values()),
        "seconds": round(elapsed, 1),
    }


def _held_by(database: str, pid: int) -> set[str]:
    import psycopg

    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT email FROM deliveries WHERE status = 'sending' AND worker LIKE %s",
            (f"%:{pid}:%",),
        ).fetchall()
    return {email for (email,) in rows}


def _open_rows(database: str) -> int:
    import psycopg

    with psycopg.connect(database) as conn:
        [(count,)] = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'sending')"
        ).fetchall()
    return int(count)


FANOUT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from digest import store
from digest.config import load_settings
from digest.deliver.run import _fan_out
from digest.model import Edition, EditionArticle, EditionSection
from digest.store import editions
settings = load_settings(None, environ={{"DIGEST_DATABASE": {database!r},
    "DIGEST_SUBSCRIBERS": {csv!r}, "DIGEST_SECRET_KEY": "k" * 32}})
db = store.connect(settings.database)
edition = Edition("e1", "T", 1, "2026-11-30T07:00", (EditionSection("s", "S",
    (EditionArticle("a", "A", "https://x.org/"),)),))
editions.record(db, "e1", 1, "T", "{{}}")
started = time.perf_counter()
done = _fan_out(settings, db, edition, b"k" * 32, [])
elapsed = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "rows": done.recipients, "peak_mb": peak}}))
"""

WRITE_PATH = """
import json, sys, time
sys.path.insert(0, {root!r})
from digest import store
from digest.deliver.audience import Copy
from digest.deliver.fanout import fan_out
from digest.model import Subscriber
from digest.store import editions
db = store.connect({database!r})
editions.record(db, "w1", 2, "T", "{{}}")
copies = [Copy(Subscriber(f"reader{{n:07}}@example.org", f"Reader {{n}}", line=n + 2), "")
          for n in range({rows})]
started = time.perf_counter()
fan_out(db, "w1", copies, b"k" * 32, "example.org")
print(json.dumps({{"seconds": time.perf_counter() - started, "rows": len(copies)}}))
db.execute("DELETE FROM deliveries WHERE edition_id = 'w1'")
"""

BARE_COPY = """
import json, sys, time
sys.path.insert(0, {root!r})
from digest import store
from digest.store.db import copy_lines
db = store.connect({database!r})
columns = ["edition_id", "email", "status", "message_id", "updated_at", "created_at",
           "address", "name", "fields", "variant", "line", "due_at"]
rows = [tuple(str(r[c]) for c in columns) for r in db.all("SELECT * FROM deliveries")]
db.execute("TRUNCATE deliveries")  # the same rows into the same empty ledger
started = time.perf_counter()
with db.transaction():
    db.copy_text("deliveries", columns, copy_lines(rows, len(columns)))
print(json.dumps({{"seconds": time.perf_counter() - started, "rows": len(rows)}}))
"""


def measure_fanout(cluster: Cluster, base: Path, rows: int) -> dict[str, Any]:
    """The fan-out of `rows` readers against a bare COPY of the rows it wrote."""
    folder = project(base / "fanout", rows)
    database = cluster.database()
    csv = str(folder / "list.csv")
    fan = _child(FANOUT.format(root=str(ROOT), database=database, csv=csv))
    write = _child(WRITE_PATH.format(root=str(ROOT), database=cluster.database(), rows=rows))
    bare = _child(BARE_COPY.format(root=str(ROOT), database=database))
    return {
        "rows": fan["rows"],
        "fanout_seconds": round(fan["seconds"], 2),
        "fanout_rows_per_s": round(fan["rows"] / fan["seconds"]),
        "bare_copy_seconds": round(bare["seconds"], 2),
        "bare_copy_rows_per_s": round(bare["rows"] / bare["seconds"]),
        "speed_ratio": round(bare["seconds"] / fan["seconds"], 2),
        # The write path alone (copies already decided, into an empty ledger).
        "write_path_seconds": round(write["seconds"], 2),
        "write_path_ratio": round(bare["seconds"] / write["seconds"], 2),
        "peak_mb": round(fan["peak_mb"], 1),
    }


def _child(script: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--per-worker", type=int, default=3000)
    parser.add_argument("--crash-messages", type=int, default=30_000)
    parser.add_argument("--fanout-rows", type=int, default=1_000_000)
    parser.add_argument("--dkim-messages", type=int, default=20_000)
    parser.add_argument("--dkim-rounds", type=int, default=3, help="sends of each kind")
    parser.add_argument("--dkim-connections", type=int, default=4)
    parser.add_argument("--sign-rounds", type=int, default=300, help="signatures timed")
    parser.add_argument("--smtp-sink", help="path to an smtp-sink binary (default: fetch)")
    parser.add_argument("--only", nargs="*", choices=["workers", "crash", "fanout", "dkim"])
    args = parser.parse_args(argv)
    chosen = set(args.only or ["workers", "crash", "fanout", "dkim"])
    report: dict[str, Any] = {}
    if "dkim" in chosen:
        with tempfile.TemporaryDirectory(prefix="digest-scale-dkim-") as base:
            report["dkim"] = measure_dkim(Path(base), args)
    if chosen - {"dkim"}:
        measure_postgres(chosen, args, report)
    print(json.dumps(report, indent=2))
    print(verdicts(report))


def measure_postgres(chosen: set[str], args: argparse.Namespace, report: dict[str, Any]) -> None:
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed (apt-get install postgresql)")
    cluster = Cluster(bin_dir)
    cluster.start()
    try:
        with tempfile.TemporaryDirectory(prefix="digest-scale-") as base:
            if "workers" in chosen:
                report["workers"] = measure_workers(cluster, Path(base), args.rate, args.per_worker)
            if "crash" in chosen:
                report["crash"] = measure_crash(cluster, Path(base), args.crash_messages)
            if "fanout" in chosen:
                report["fanout"] = measure_fanout(cluster, Path(base), args.fanout_rows)
    finally:
        cluster.stop()


def verdicts(report: dict[str, Any]) -> str:
    lines = []
    if "workers" in report:
        found = report["workers"]
        for n in ("2", "3"):
            ratio = found[n]["ratio_to_one"]
            ok = ratio >= 0.9 * int(n) and found[n]["exactly_once"]
            lines.append(
                f"{'PASS' if ok else 'FAIL'}  {n} workers >= {0.9 * int(n):.1f}x one ({ratio}x)"
            )
    if "crash" in report:
        c = report["crash"]
        ok = c["everyone"] and c["repeated_only_in_flight"] and c["same_message_id"]
        lines.append(
            f"{'PASS' if ok else 'FAIL'}  crash: everyone once, {c['repeated']} repeated in flight"
        )
    if "fanout" in report:
        f = report["fanout"]
        ok = f["speed_ratio"] >= 0.5 and f["peak_mb"] < 150
        lines.append(
            f"{'PASS' if ok else 'FAIL'}  fan-out {f['speed_ratio']}x bare COPY (>= 0.5), "
            f"peak {f['peak_mb']} MB (< 150)"
        )
    if "dkim" in report:
        lines.append(dkim_verdict(report["dkim"]))
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
