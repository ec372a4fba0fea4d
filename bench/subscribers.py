"""Memory and speed of reading a large subscriber list.

Writes a CSV of N rows (default 1,000,000, a few repeated addresses among
them), then runs three passes, each in its own process so peak memory
(ru_maxrss) belongs to that pass alone:

  baseline-set  csv.reader + a Python set of lower-cased addresses: the
                naive way to find repeats, the memory we must not pay
  check         digest.deliver.subscribers.check: validation (email-validator)
                and repeats through the temporary SQLite table
  effective     digest.deliver.audience.copies over the whole list
                (digest.deliver.listing.everyone: the CSV's rows, then
                confirmed sign-ups) against a database with 10,000
                suppressions and 10,000 preferences: what the send's fan-out
                iterates (the recipients are counted)

Usage: .venv/bin/python bench/subscribers.py [--rows N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS_EVERY = 1_000


def write_list(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["email", "name", "sections", "status", "timezone", "company"])
        for i in range(rows):
            # Every REPEATS_EVERY-th row repeats an earlier address in upper case.
            n = i // 2 if i and i % REPEATS_EVERY == 0 else i
            email = f"reader{n}@example{n % 97}.org"
            email = email.upper() if n != i else email
            section = ("technology", "science", "")[i % 3]
            out.writerow([email, f"Reader {i}", section, "active", "Europe/Berlin", "ACME"])


def pass_baseline(path: Path, _db: Path) -> dict[str, float]:
    seen: set[str] = set()
    repeats = rows = 0
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            rows += 1
            key = row[0].lower()
            if key in seen:
                repeats += 1
            seen.add(key)
    return {"rows": rows, "repeats": repeats}


def pass_check(path: Path, _db: Path) -> dict[str, float]:
    from digest.deliver.subscribers import check

    summary = check(path, lambda problem: None)
    return {"rows": summary.rows, "repeats": summary.duplicates, "bad": summary.bad}


def pass_effective(path: Path, db_path: Path) -> dict[str, float]:
    from digest import store
    from digest.deliver.audience import SEND, Audience, copies
    from digest.deliver.listing import everyone
    from digest.deliver.subscribers import RowError
    from digest.model import Edition, EditionArticle, EditionSection

    # Both sections of the list hold an article, so every active, unsuppressed
    # subscriber gets a copy: the recipients are the old `effective` list.
    sections = tuple(
        EditionSection(key, key.title(), (EditionArticle(key, key, f"https://x.org/{key}"),))
        for key in ("technology", "science")
    )
    audience = Audience(Edition("bench", "Bench", 1, "2026-11-30T07:00", sections))
    db = store.connect(db_path)
    errors: list[RowError] = []
    sent = sum(
        1 for c in copies(audience, db, everyone(path, db, errors.append)) if c.reason == SEND
    )
    db.close()
    return {"rows": sent, "repeats": sum(1 for e in errors if e.duplicate_of)}


def prepare_db(db_path: Path) -> None:
    from digest import store
    from digest.store import audience

    db = store.connect(db_path)
    with db.transaction():
        for n in range(0, 1_000_000, 100):
            audience.suppress(db, f"reader{n}@example{n % 97}.org", "unsubscribed: bench")
            audience.set_preferences(db, f"reader{n + 1}@example{(n + 1) % 97}.org", ["science"])
    db.close()


PASSES = {"baseline-set": pass_baseline, "check": pass_check, "effective": pass_effective}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, path: Path, db_path: Path) -> None:
    # Every pass imports the same modules first, so growth compares like with like.
    import digest.deliver.audience
    import digest.deliver.listing
    import digest.deliver.subscribers
    import digest.store  # noqa: F401

    before = peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    result = PASSES[name](path, db_path)
    result["seconds"] = time.perf_counter() - started
    # CPU time as well: on a shared machine wall time also measures the others.
    result["cpu"] = time.process_time() - cpu
    result["peak_mb"] = peak_mb()
    result["growth_mb"] = result["peak_mb"] - before
    print(json.dumps(result))


def run(name: str, path: Path, db_path: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", name, str(path), str(db_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, metavar=("PASS", "CSV", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="digest-bench-") as folder:
        path, db_path = Path(folder) / "list.csv", Path(folder) / "digest.db"
        write_list(path, args.rows)
        prepare_db(db_path)
        size = path.stat().st_size / 1e6
        print(f"list: {args.rows:,} rows, {size:.0f} MB")
        results = {name: run(name, path, db_path) for name in PASSES}
    for name, r in results.items():
        print(
            f"{name:13} peak {r['peak_mb']:6.1f} MB (+{r['growth_mb']:5.1f} MB in the pass)  "
            f"{r['seconds']:6.1f} s (CPU {r['cpu']:5.1f} s)  "
            f"{r['rows'] / r['seconds']:>9,.0f} rows/s  repeats {int(r['repeats'])}"
        )
    base, ours = results["baseline-set"], results["check"]
    memory = ours["growth_mb"] / max(base["growth_mb"], 0.1)
    slower = ours["seconds"] / base["seconds"]
    print(
        f"ratio: check grows memory {memory:.2f}x as much as a Python set of the addresses, "
        f"and takes {slower:.1f}x its time (almost all of it email-validator's syntax check)"
    )


if __name__ == "__main__":
    main()
