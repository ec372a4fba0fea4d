"""The runner lease on both backends: exclusive while its holder lives,
given up at once on release, and taken over at once when the holder is
killed (the OS lock or the server's advisory lock goes with the process)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from digest import store
from digest.store import lease

HOLD = """
import sys, time
from digest import store
from digest.store import lease
db = store.connect(sys.argv[1])
lock = lease.RunnerLock(sys.argv[1], "digest run on elsewhere pid 1")
assert lock.acquire(db, 3600, time.time()) is None
print("held", flush=True)
time.sleep(600)
"""


def test_the_lease_is_exclusive_and_given_up_at_once(database: str) -> None:
    db = store.connect(database)
    a = lease.RunnerLock(database, "a")
    b = lease.RunnerLock(database, "b")
    assert a.acquire(db, 30, 1000.0) is None
    assert a.acquire(db, 30, 1010.0) is None  # renewal
    held = b.acquire(db, 30, 5000.0)  # long past the row's expiry: a still runs
    assert held is not None and held.holder == "a"
    assert lease.held(database, db)
    a.release(db)
    assert lease.lease(db) is None and not lease.held(database, db)
    assert b.acquire(db, 30, 5010.0) is None and b.took_over is None
    b.release(db)
    db.close()


def test_a_lease_held_by_a_killed_process_is_taken_over_at_once(database: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, database], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        db = store.connect(database)
        mine = lease.RunnerLock(database, "me")
        other = mine.acquire(db, 30, time.time())
        assert other is not None and other.holder == "digest run on elsewhere pid 1"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        # Its row still says it holds the lease for an hour; the lock is gone
        # (PostgreSQL notices the dead connection within moments).
        deadline = time.monotonic() + 20
        while lease.held(database, db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mine.acquire(db, 30, time.time()) is None
        assert mine.took_over is not None and mine.took_over.holder.endswith("pid 1")
        mine.release(db)
        db.close()
    finally:
        holder.kill()
        holder.wait(10)
