"""Where fetched bodies are parsed: in parser processes of their own.

Parsing feeds and pages is CPU work on untrusted input. In this process it
would hold the event loop up, or (in a thread) fight it for the GIL, and one
body that crashes or exhausts the parser would take the whole collection
with it. In a separate process it runs beside the fetching, on another core,
and a parser process that dies costs one retry on a fresh one, then that
source alone.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from digest.errors import SourceError

log = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def parsers() -> ProcessPoolExecutor:
    """The parser processes, started on first use and kept for the process's
    life (a scheduler collects again at every slot). One per core but one,
    at most four: the fetching and storing keep a core of their own."""
    global _pool
    with _lock:
        if _pool is None:
            methods = multiprocessing.get_all_start_methods()
            # A fresh server process forks the parsers: never a copy of this
            # one's threads (the scheduler's, a database pool's) and locks.
            method = "forkserver" if "forkserver" in methods else "spawn"
            workers = max(1, min(4, (os.cpu_count() or 2) - 1))
            _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))
        return _pool


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def parse(url: str, work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in a parser process. A parser process that died (killed,
    out of memory, crashed on this body) is replaced and the work tried once
    more; a second death is this source's error."""
    loop = asyncio.get_running_loop()
    for attempt in (1, 2):
        pool = parsers()
        try:
            return await loop.run_in_executor(pool, work, *args)
        except BrokenProcessPool:
            _discard(pool)
            log.warning("a parser process died reading %s (attempt %d of 2)", url, attempt)
    raise SourceError(
        f"{url}: the parser process died twice reading this answer (out of memory,"
        " or a crash on this content); the source was skipped, the others were read"
    )
