"""Send benchmark: digest's pool against a naive loop, every figure in one run.

    .venv/bin/python bench/send.py [--messages 20000] [--naive 3000]
        [--tls-messages 5000] [--dry-rows 1000000] [--fanout-rows 1000000]
        [--smtp-sink PATH]

Plain SMTP goes to Postfix's smtp-sink (from Debian's postfix package,
fetched with `apt-get download` and unpacked with `dpkg -x` into a temp
folder; never installed); STARTTLS + AUTH to aiosmtpd in another process
with a self-signed certificate. Each measurement runs in its own process,
so peak memory is that measurement's alone.

A send writes a pending ledger row for every recipient before the first
message (the fan-out); its cost is measured on its own too, at the send's
list length and at FANOUT_ROWS: once as the send does it (read and validate
the CSV, decide each copy, write the rows) and once writing generated rows
straight through `digest.deliver.fanout.fan_out`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARAGRAPH = (
    "Engineers and city planners spent the spring measuring how the new design holds up "
    "under real traffic, and what they found surprised even the people who proposed it. "
    "The figures are early, but they point the same way in every district they tried."
)


def make_project(folder: Path, rows: int) -> Path:
    """Two sections of six articles each, and a CSV of `rows` subscribers."""
    sections = []
    for section in ("technology", "science"):
        (folder / section).mkdir(parents=True)
        for n in range(6):
            body = "\n\n".join(
                f"## Part {p}\n\n{PARAGRAPH} Article {n}, part {p}." for p in range(1, 4)
            )
            text = f"# {section.title()} story {n}: what changed this week\n\n{PARAGRAPH}\n\n"
            (folder / section / f"story-{n}.md").write_text(text + body, encoding="utf-8")
        sections.append(
            f'[[sections]]\nkey = "{section}"\ntitle = "{section.title()}"\n'
            f'sources = ["{section}"]\nlimit = 6\n'
        )
    config = '[digest]\ntitle = "The Bench Digest"\n\n' + "\n".join(sections)
    (folder / "digest.toml").write_text(config, encoding="utf-8")
    write_csv(folder / "subscribers.csv", rows)
    return folder


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("email,name,sections,status\n")
        for n in range(rows):
            handle.write(f"reader{n}@example.org,Reader Number {n},,active\n")


def settings_for(folder: Path, **env: str) -> Any:
    from digest.config import load_settings

    base = {
        "DIGEST_DATABASE": str(folder / "digest.db"),
        "DIGEST_SUBSCRIBERS": str(folder / "subscribers.csv"),
        "DIGEST_FROM": "The Bench Digest <digest@example.org>",
        "DIGEST_SECRET_KEY": "bench-secret-key-for-the-benchmarks",
        "DIGEST_BASE_URL": "https://digest.example.org",
    }
    return load_settings(folder / "digest.toml", environ={**base, **env})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(run: Any) -> dict[str, float]:
    """Wall time, CPU time of this process (all threads) and peak RSS."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "messages": count,
        "seconds": wall,
        "per_second": count / wall,
        "cpu_us_per_message": cpu / max(count, 1) * 1e6,
        "peak_mb": peak,
    }


def child_digest(folder: Path, env: dict[str, str]) -> dict[str, float]:
    from digest import job
    from digest.deliver import Progress

    settings = settings_for(folder, **env)
    first: list[float] = []

    def progress(_: Progress) -> None:
        if not first:
            first.append(time.perf_counter())

    def run() -> int:
        result = job.send(settings, progress=progress)
        return result.report.counts.get("sent", 0)

    started = time.perf_counter()
    figures = measure(run)
    # Collect, build, record, compile and fan out, then the first group's answers.
    figures["first_answer_s"] = first[0] - started if first else 0.0
    return figures


def child_naive(folder: Path, env: dict[str, str], limit: int) -> dict[str, float]:
    """The loop a newcomer writes: render, build an EmailMessage, send_message."""
    import smtplib
    from email.message import EmailMessage

    from digest import store
    from digest.deliver.subscribers import active_subscribers
    from digest.render import compile_edition, personalize

    settings = settings_for(folder, **env)
    db = store.connect(settings.database)
    edition = collected_edition(settings, db)
    compiled = compile_edition(edition, settings.look)

    def run() -> int:
        smtp = smtplib.SMTP(settings.smtp.host, settings.smtp.effective_port)
        sent = 0
        for sub in active_subscribers(settings.subscribers, []):
            link = f"{settings.base_url}/unsubscribe?email={sub.email}"
            values = {"name": sub.name, "email": sub.email}
            html, text = personalize(
                compiled, {**values, "unsubscribe_url": link, "preferences_url": link}
            )
            message = EmailMessage()
            message["From"] = settings.from_addr
            message["To"] = sub.email
            message["Subject"] = compiled.subject
            message["List-Unsubscribe"] = f"<{link}>"
            message.set_content(text)
            message.add_alternative(html, subtype="html")
            smtp.send_message(message)
            sent += 1
            if sent == limit:
                break
        smtp.quit()
        return sent

    return measure(run)


def collected_edition(settings: Any, db: Any) -> Any:
    """The same 12-article edition `digest send` would build (not recorded)."""
    from digest import job
    from digest.collect import collect
    from digest.edition import lifecycle

    collect(settings.fetch, settings.sections, db)
    edition = lifecycle.candidate(
        db, settings.title, settings.sections, settings.summary, job.local_now(settings)
    )
    assert len(edition.article_ids) == 12
    return edition


def child_dry(folder: Path) -> dict[str, float]:
    from digest import job

    settings = settings_for(folder)

    def run() -> int:
        report = job.dry_run(settings)
        counts = report["counts"]
        assert isinstance(counts, dict)
        return int(sum(counts.values()))

    return measure(run)


def child_fanout(folder: Path, rows: int, generated: bool) -> dict[str, float]:
    """The fan-out alone: a pending ledger row per recipient, for a recorded
    edition. As the send does it (the CSV read, validated and decided through
    the audience), or, with `generated`, rows made here and written straight
    through `fan_out` (the ledger's own cost)."""
    from digest import store
    from digest.deliver.audience import SEND, Copy, copies
    from digest.deliver.fanout import fan_out
    from digest.deliver.listing import everyone
    from digest.deliver.message import sender_address
    from digest.deliver.run import audience_for
    from digest.deliver.subscribers import RowError
    from digest.edition import lifecycle
    from digest.model import Subscriber
    from digest.store import meta

    settings = settings_for(folder)
    db = store.connect(settings.database)
    edition = lifecycle.record(db, collected_edition(settings, db))
    secret = meta.signing_key(db, settings.secret_key)
    domain = sender_address(settings.from_addr).rsplit("@", 1)[1]
    errors: list[RowError] = []

    def made() -> Any:
        for n in range(rows):
            sub = Subscriber(f"reader{n}@example.org", f"Reader Number {n}", line=n + 2)
            yield Copy(sub, "", SEND)

    def run() -> int:
        if generated:
            chosen = made()
        else:
            chosen = copies(
                audience_for(settings, edition),
                db,
                everyone(settings.subscribers, db, errors.append),
            )
        return fan_out(db, edition.id, chosen, secret, domain).recipients

    figures = measure(run)
    written = db.scalar("SELECT COUNT(*) FROM deliveries WHERE edition_id = ?", (edition.id,))
    assert written == rows == figures["messages"] and not errors, (written, rows, errors[:3])
    db.close()
    figures["database_mb"] = (
        sum(p.stat().st_size for p in folder.glob("digest.db*") if p.is_file()) / 1e6
    )
    return figures


def message_maker(folder: Path) -> Callable[[str, tuple[tuple[str, str], ...]], Any]:
    """Renders one subscriber's message of the 12-article edition (compiled
    once here), for a reader's name and further fields."""
    from digest import store
    from digest.deliver.message import MessageIds, build_skeleton, render_message
    from digest.render import compile_edition
    from digest.store import meta

    settings = settings_for(folder)
    db = store.connect(settings.database)
    secret = meta.signing_key(db, settings.secret_key)
    edition = collected_edition(settings, db)
    skeleton = build_skeleton(compile_edition(edition, settings.look), settings.sender, secret)
    email = "reader@example.org"
    mid = MessageIds(secret, edition.id, skeleton.domain)(email)
    return lambda name, extra: render_message(skeleton, settings.base_url, email, name, mid, extra)


def child_message(folder: Path, rounds: int) -> dict[str, float]:
    """Size of one subscriber's message and the cost of rendering it (DKIM
    signing is measured by bench/scale.py --only dkim)."""
    make = message_maker(folder)
    message = bytes(make("Reader", ()))
    figures: dict[str, float] = {"message_kb": len(message) / 1024}
    start = time.perf_counter()
    for _ in range(rounds):
        bytes(make("Reader", ()))
    figures["render_us"] = (time.perf_counter() - start) / rounds * 1e6
    return figures


def ed25519_key() -> bytes:
    """An ed25519 key as dkimpy takes it: the base64 of the 32-byte seed."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(seed)


def rsa_key(folder: Path) -> Path:
    """A 2048-bit RSA key, the size providers expect for rsa-sha256."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = folder / "dkim.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
    return path


def run_child(mode: str, folder: Path, extra: dict[str, Any]) -> dict[str, float]:
    spec = json.dumps({"mode": mode, "folder": str(folder), **extra})
    out = subprocess.run(
        [sys.executable, __file__, "--child", spec], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def child_main(spec: dict[str, Any]) -> None:
    folder = Path(spec["folder"])
    env = spec.get("env", {})
    if spec["mode"] == "digest":
        figures = child_digest(folder, env)
    elif spec["mode"] == "naive":
        figures = child_naive(folder, env, spec["limit"])
    elif spec["mode"] == "dry":
        figures = child_dry(folder)
    elif spec["mode"] == "fanout":
        figures = child_fanout(folder, spec["rows"], spec["generated"])
    else:
        figures = child_message(folder, spec["rounds"])
    print(json.dumps(figures))


def smtp_sink(folder: Path, given: str | None) -> Path | None:
    """smtp-sink from Debian's postfix package, unpacked (not installed)."""
    if given:
        return Path(given)
    try:
        subprocess.run(
            ["apt-get", "download", "postfix"], cwd=folder, check=True, capture_output=True
        )
        deb = next(folder.glob("postfix_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(folder / "postfix")], check=True)
    except (OSError, subprocess.CalledProcessError, StopIteration) as e:
        print(f"smtp-sink unavailable ({e}); falling back to aiosmtpd", file=sys.stderr)
        return None
    return folder / "postfix" / "usr" / "sbin" / "smtp-sink"


def start_sink(binary: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    libs = binary.parent.parent / "lib" / "postfix"
    process = subprocess.Popen(
        [str(binary), "-u", "nobody", f"127.0.0.1:{port}", "256"],
        env={**os.environ, "LD_LIBRARY_PATH": str(libs)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process, port


def start_aiosmtpd(folder: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port_file = folder / f"port-{time.monotonic_ns()}"
    script = ROOT / "tests" / "smtp_process.py"
    process = subprocess.Popen(
        [sys.executable, str(script), str(port_file), *extra], stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        if port_file.exists():
            return process, int(port_file.read_text())
        time.sleep(0.05)
    raise SystemExit("aiosmtpd did not start")


def server_cpu(process: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) a server process has used so far."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def fresh(folder: Path, rows: int) -> Path:
    """A new project copy (own database), so every measurement starts from zero."""
    target = folder / f"p{time.monotonic_ns()}"
    make_project(target, rows)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=3_000, help="messages for the naive loop")
    parser.add_argument("--tls-messages", type=int, default=5_000)
    parser.add_argument("--dry-rows", type=int, default=1_000_000)
    parser.add_argument("--fanout-rows", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--smtp-sink", help="path to an smtp-sink binary (default: fetch)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as tmp:
        report(run_all(Path(tmp), args), args)


def run_all(tmp: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    from tests.tls import self_signed

    figures: dict[str, dict[str, float]] = {}
    sink = smtp_sink(tmp, args.smtp_sink)
    server, port = start_sink(sink) if sink else start_aiosmtpd(tmp)
    plain = {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": str(args.connections),
    }
    try:
        figures["naive"] = run_child(
            "naive", fresh(tmp, args.naive), {"env": plain, "limit": args.naive}
        )
        figures["digest"] = run_child("digest", fresh(tmp, args.messages), {"env": plain})
    finally:
        server.terminate()
        server.wait()
    cert, key = self_signed(tmp)
    tls = ("--tls", str(cert), str(key), "--auth", "bench:s3cret")
    server, port = start_aiosmtpd(tmp, *tls)
    secure = {
        **plain,
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "starttls",
        "DIGEST_SMTP_CA_FILE": str(cert),
        "DIGEST_SMTP_USER": "bench",
        "DIGEST_SMTP_PASSWORD": "s3cret",
    }
    try:
        figures["starttls"] = run_child("digest", fresh(tmp, args.tls_messages), {"env": secure})
        figures["starttls"]["server_cpu_us"] = server_cpu(server) / args.tls_messages * 1e6
        # aiosmtpd is one Python process, so one core: a second one sharing the
        # port shows what the client does when the server is not the limit.
        second, _ = start_aiosmtpd(tmp, *tls, "--port", str(port))
        try:
            before = server_cpu(server) + server_cpu(second)
            figures["starttls2"] = run_child(
                "digest", fresh(tmp, args.tls_messages), {"env": secure}
            )
            spent = server_cpu(server) + server_cpu(second) - before
            figures["starttls2"]["server_cpu_us"] = spent / args.tls_messages * 1e6
        finally:
            second.terminate()
            second.wait()
    finally:
        server.terminate()
        server.wait()
    figures["message"] = run_child("message", fresh(tmp, 1), {"rounds": 200})
    figures["dry_run"] = run_child("dry", fresh(tmp, args.dry_rows), {})
    for rows, name in ((args.messages, "fanout_send"), (args.fanout_rows, "fanout_big")):
        figures[name] = run_child("fanout", fresh(tmp, rows), {"rows": rows, "generated": False})
        figures[name + "_gen"] = run_child(
            "fanout", fresh(tmp, 1), {"rows": rows, "generated": True}
        )
    figures["server"] = {"smtp_sink": 1.0 if sink else 0.0}
    return figures


def report(figures: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    naive, ours, tls = figures["naive"], figures["digest"], figures["starttls"]
    dry, message = figures["dry_run"], figures["message"]
    server = "smtp-sink" if figures["server"]["smtp_sink"] else "aiosmtpd (fallback)"
    ratio = ours["per_second"] / naive["per_second"]
    tls2 = figures["starttls2"]
    rows = [
        ("naive loop, 1 connection", naive),
        (f"digest, {args.connections} connections", ours),
        ("digest, STARTTLS+AUTH, 1 aiosmtpd", tls),
        ("digest, STARTTLS+AUTH, 2 aiosmtpd", tls2),
    ]
    print(f"plain SMTP server: {server}; message {message['message_kb']:.1f} KB")
    print(f"{'run':36} {'messages':>8} {'msg/s':>8} {'CPU us/msg':>10} {'peak MB':>8}")
    for name, f in rows:
        print(
            f"{name:36} {f['messages']:8.0f} {f['per_second']:8.0f} "
            f"{f['cpu_us_per_message']:10.0f} {f['peak_mb']:8.0f}"
        )
    # How busy the servers were: near 100% (200% for two) they were the limit;
    # well below, they waited for a core the machine's other work held.
    busy = [f["server_cpu_us"] * f["messages"] / 1e6 / f["seconds"] for f in (tls, tls2)]
    print(
        f"aiosmtpd CPU per message: {tls['server_cpu_us']:.0f} us with one process "
        f"(its ceiling: {1e6 / tls['server_cpu_us']:.0f} msg/s per core), "
        f"{tls2['server_cpu_us']:.0f} us over two; "
        f"busy {busy[0]:.0%} of the run (one), {busy[1]:.0%} (two, of 200%)"
    )
    print(
        f"first answer of the {ours['messages']:.0f}-message send after "
        f"{ours['first_answer_s']:.2f} s (collect, build, record, compile, fan-out)"
    )
    print(
        f"dry run over {dry['messages']:.0f} rows: {dry['seconds']:.1f} s, "
        f"peak {dry['peak_mb']:.0f} MB"
    )
    print(
        f"{'fan-out (pending ledger rows)':36} {'rows':>8} {'rows/s':>8}"
        f" {'seconds':>10} {'peak MB':>8}"
    )
    for key, how in (("", "from the CSV"), ("_gen", "generated rows")):
        for name in ("fanout_send", "fanout_big"):
            f = figures[name + key]
            print(
                f"{how:36} {f['messages']:8.0f} {f['per_second']:8.0f} "
                f"{f['seconds']:10.2f} {f['peak_mb']:8.0f}"
            )
    big = figures["fanout_big"]
    print(
        f"ledger after {big['messages']:.0f} rows: {big['database_mb']:.0f} MB on disk; "
        f"fan-out of the {ours['messages']:.0f}-message send is "
        f"{figures['fanout_send']['seconds'] / ours['seconds']:.0%} of its time"
    )
    print(f"per message: render {message['render_us']:.0f} us (DKIM: bench/scale.py --only dkim)")
    checks = [
        (f"plain >= 1500 msg/s ({ours['per_second']:.0f})", ours["per_second"] >= 1500),
        (f"plain >= 8x naive ({ratio:.1f}x)", ratio >= 8),
        (
            f"STARTTLS+AUTH >= 400 msg/s (1 server: {tls['per_second']:.0f}, "
            f"2: {tls2['per_second']:.0f})",
            max(tls["per_second"], tls2["per_second"]) >= 400,
        ),
        (f"dry run peak < 150 MB ({dry['peak_mb']:.0f})", dry["peak_mb"] < 150),
    ]
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
