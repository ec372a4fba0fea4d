"""The DKIM section of bench/scale.py (issue 13, item 5); this file is also
the entry point of its measurement processes.

`bench/scale.py --only dkim` sends --dkim-messages personalised messages
signed with rsa-2048 and the same send unsigned to one Postfix smtp-sink,
interleaved, best of --dkim-rounds each (target: signed >= 0.5 x unsigned);
then, in one process, the cost of an rsa-sha256 and an ed25519-sha256
signature against dkimpy's, and of the body hash from the skeleton against
canonicalising the whole body. smtp-sink comes from Debian's postfix
package, fetched with `apt-get download` and unpacked with `dpkg -x` into a
temp folder (never installed).
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.send import (  # noqa: E402  (the path above makes bench importable)
    ed25519_key,
    fresh,
    measure,
    message_maker,
    rsa_key,
    settings_for,
    smtp_sink,
    start_sink,
)

Figures = dict[str, float]


def child_send(folder: Path, env: dict[str, str]) -> Figures:
    """The whole `digest send` (collect, build, fan-out, send) to the sink;
    `delivery_per_second` counts from the first recorded group of answers,
    so it is the send loop's own rate."""
    from digest import job
    from digest.deliver import Progress

    settings = settings_for(folder, **env)
    first: list[tuple[float, int]] = []

    def progress(update: Progress) -> None:
        if not first:
            first.append((time.perf_counter(), update.done))

    def run() -> int:
        counts = job.send(settings, progress=progress).report.counts
        assert set(counts) == {"sent"}, counts
        return counts["sent"]

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = measure(run)
    ended = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the signing children, ended
    (at, done) = first[0]
    figures["delivery_per_second"] = (figures["messages"] - done) / (ended - at)
    children = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    figures["children_cpu_us_per_message"] = children / figures["messages"] * 1e6
    return figures


def sample_message(folder: Path) -> Any:
    """One subscriber's message of the 12-article edition, with a further field."""
    return message_maker(folder)("Zoë Ørsted", (("Company", "Ærø  Næringsliv AS"),))


def per_call(call: Callable[[], object], n: int) -> float:
    """Microseconds per call, after one call to warm up."""
    call()
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def child_sign_costs(folder: Path, rounds: int) -> Figures:
    """Per message: digest's signatures (the DKIM-Signature field, body hash
    included) and body hash against dkimpy's, all in this one process; and
    the rsa signature through a signing child, one at a time."""
    import hashlib

    import dkim

    from digest.deliver.bodyhash import whole_body_hash
    from digest.deliver.dkim import dkim_signature, load_dkim_key, signed
    from digest.deliver.signer import signing

    message = sample_message(folder)
    (folder / "dkim.ed25519").write_bytes(ed25519_key())
    rsa = load_dkim_key(rsa_key(folder), "bench", "example.org")
    ed = load_dkim_key(folder / "dkim.ed25519", "bench", "example.org")
    for key in (rsa, ed):  # what is timed must verify
        txt = record(key)
        assert dkim.verify(signed(message, key), dnsfunc=lambda _, timeout=5, txt=txt: txt)
    raw, body = bytes(message), message.body
    pem, seed = rsa_key(folder).read_bytes(), (folder / "dkim.ed25519").read_bytes()

    def dkimpy(key: bytes, algorithm: bytes) -> object:
        both = (b"relaxed", b"relaxed")
        return dkim.sign(
            raw, b"bench", b"example.org", key, signature_algorithm=algorithm, canonicalize=both
        )

    slow = max(10, rounds // 10)  # dkimpy's RSA takes milliseconds
    plan = message.skeleton.digests.plan(relaxed=True)
    relaxed = dkim.canonicalization.Relaxed
    figures = {
        "message_kb": len(raw) / 1024,
        "rsa_us": per_call(lambda: dkim_signature(message, rsa), rounds),
        "ed25519_us": per_call(lambda: dkim_signature(message, ed), rounds),
        "dkimpy_rsa_us": per_call(lambda: dkimpy(pem, b"rsa-sha256"), slow),
        "dkimpy_ed25519_us": per_call(lambda: dkimpy(seed, b"ed25519-sha256"), slow),
        "body_plan_us": per_call(lambda: plan.digest(message.values), rounds),
        "body_whole_us": per_call(lambda: whole_body_hash(body, relaxed=True), rounds),
        "body_dkimpy_us": per_call(
            lambda: hashlib.sha256(relaxed.canonicalize_body(body)).digest(), rounds
        ),
    }
    with signing(rsa, 1) as remote:
        assert remote is not None
        figures["rsa_child_us"] = per_call(lambda: dkim_signature(message, remote), rounds)
    return figures


def record(key: Any) -> bytes:
    """The DNS TXT record that publishes a DkimKey's public half."""
    from cryptography.hazmat.primitives import serialization

    public = key.private_key.public_key()
    if key.algorithm == b"rsa-sha256":
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)


CHILDREN: dict[str, Callable[..., Figures]] = {
    "send": child_send,
    "sign_costs": child_sign_costs,
}


def run_child(mode: str, **spec: Any) -> Figures:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps({"mode": mode, **spec})],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    figures: Figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def measure_dkim(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Both sends and the signing costs; prints the table, returns the figures."""
    sink = smtp_sink(tmp, args.smtp_sink)
    if sink is None:
        raise SystemExit("the dkim section needs Postfix's smtp-sink (apt-get download postfix)")
    server, port = start_sink(sink)
    plain = {
        "DIGEST_SMTP_HOST": "127.0.0.1",
        "DIGEST_SMTP_PORT": str(port),
        "DIGEST_SMTP_SECURITY": "none",
        "DIGEST_SMTP_CONNECTIONS": str(args.dkim_connections),
    }
    signed = {**plain, "DIGEST_DKIM_KEY_FILE": str(rsa_key(tmp)), "DIGEST_DKIM_SELECTOR": "bench"}
    runs: dict[str, list[Figures]] = {"unsigned": [], "signed": []}
    try:
        for _ in range(args.dkim_rounds):  # interleaved, so both see the same load
            for name, env in (("unsigned", plain), ("signed", signed)):
                folder = str(fresh(tmp, args.dkim_messages))
                runs[name].append(run_child("send", folder=folder, env=env))
    finally:
        server.terminate()
        server.wait()
    costs = run_child("sign_costs", folder=str(fresh(tmp, 1)), rounds=args.sign_rounds)
    return report_dkim(runs, costs, args)


def report_dkim(
    runs: dict[str, list[Figures]], costs: Figures, args: argparse.Namespace
) -> dict[str, Any]:
    best = {name: max(r, key=lambda f: f["delivery_per_second"]) for name, r in runs.items()}
    rate = {name: f["delivery_per_second"] for name, f in best.items()}
    whole = best["signed"]["per_second"] / best["unsigned"]["per_second"]
    ratio = rate["signed"] / rate["unsigned"]
    print(
        f"## dkim: {args.dkim_messages} messages of {costs['message_kb']:.1f} KB over "
        f"{args.dkim_connections} connections to smtp-sink, best of {args.dkim_rounds}"
    )
    print(
        f"{'send':18} {'delivery msg/s, each round':>27} {'best':>6} {'whole send':>10}"
        f" {'CPU us/msg':>10} {'+children':>9} {'peak MB':>8}"
    )
    for name, label in (("unsigned", "unsigned"), ("signed", "signed, rsa-2048")):
        rates = ", ".join(f"{f['delivery_per_second']:.0f}" for f in runs[name])
        f = best[name]
        print(
            f"{label:18} {rates:>27} {rate[name]:6.0f} {f['per_second']:10.0f}"
            f" {f['cpu_us_per_message']:10.0f} {f['children_cpu_us_per_message']:9.0f}"
            f" {f['peak_mb']:8.0f}"
        )
    print(
        f"signed / unsigned: {ratio:.2f} in the send loop, {whole:.2f} over the whole"
        " `digest send` (collect, build, fan-out included)"
    )
    print(f"per message (us)          {'digest':>8} {'dkimpy':>8} {'ratio':>7}")
    for label, ours, theirs in (
        ("sign rsa-sha256 (2048)", "rsa_us", "dkimpy_rsa_us"),
        ("sign ed25519-sha256", "ed25519_us", "dkimpy_ed25519_us"),
        ("body hash, relaxed", "body_plan_us", "body_dkimpy_us"),
    ):
        print(
            f"{label:25} {costs[ours]:8.0f} {costs[theirs]:8.0f} "
            f"{costs[theirs] / costs[ours]:6.1f}x"
        )
    print(
        f"(signatures include the body hash; rsa-sha256 through a signing child, one at a"
        f" time: {costs['rsa_child_us']:.0f} us of waiting; the whole body canonicalised"
        f" and hashed by digest's own code: {costs['body_whole_us']:.0f} us)"
    )
    return {"ratio": round(ratio, 2), "whole_ratio": round(whole, 2), "runs": runs, "costs": costs}


def verdict(found: dict[str, Any]) -> str:
    ok = found["ratio"] >= 0.5
    return f"{'PASS' if ok else 'FAIL'}  dkim: signed >= 0.5x unsigned ({found['ratio']}x)"


if __name__ == "__main__":  # a measurement process: `scale_dkim.py --child SPEC`
    spec = json.loads(sys.argv[2])
    spec["folder"] = Path(spec["folder"])
    print(json.dumps(CHILDREN[spec.pop("mode")](**spec)))
