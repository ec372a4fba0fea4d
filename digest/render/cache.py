"""The compile cache: a compiled email is a pure function of the templates,
the edition and the settings that shape output, so it is keyed by their hash
and kept in memory (and on disk when `render_cache` names a folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from digest.config import Look
from digest.model import Edition
from digest.render.compiled import CompiledEmail, Prepared

log = logging.getLogger(__name__)

FORMAT = "digest-render-5"
MEMORY_ENTRIES = 64
# Process-wide on purpose: entries are immutable and keyed by everything that
# shapes them, so sharing cannot leak state, and every caller (the job's
# section variants, the preview) benefits without threading a cache through.
_memory: OrderedDict[str, CompiledEmail] = OrderedDict()
_lock = threading.Lock()


def cache_key(folders: list[Path], edition: Edition, look: Look, kind: str) -> str:
    """A hash of every input that can change the compiled output."""
    digest = hashlib.sha256()
    tools = f"{FORMAT}\0{kind}\0{version('mjml')}\0{version('minify-html')}\0"
    digest.update(tools.encode())
    for index, folder in enumerate(folders):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(f"{index}\0{path.relative_to(folder).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    digest.update(json.dumps(asdict(edition), sort_keys=True, ensure_ascii=False).encode())
    # Every field of the render settings shapes the output, but where the cache lives.
    shaping = {k: v for k, v in asdict(look).items() if k != "render_cache"}
    digest.update(json.dumps(shaping, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def load(key: str, folder: Path | None) -> CompiledEmail | None:
    """The cached compile for this key, from memory or disk, if any."""
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            return _memory[key]
    if folder is None:
        return None
    compiled = _read(folder / f"{key}.json")
    if compiled is not None:
        _remember(key, compiled)
    return compiled


def store(key: str, compiled: CompiledEmail, folder: Path | None) -> None:
    _remember(key, compiled)
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{key}.json"
    # Write then rename, so a reader never sees half a file.
    partial = target.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(json.dumps(asdict(compiled), ensure_ascii=False), encoding="utf-8")
    partial.replace(target)


def clear() -> None:
    """Forget the in-memory entries (the disk cache stays)."""
    with _lock:
        _memory.clear()


def _remember(key: str, compiled: CompiledEmail) -> None:
    with _lock:
        _memory[key] = compiled
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)


def _read(path: Path) -> CompiledEmail | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable render cache file %s (%s); compiling again", path, e)
        return None
    try:
        parts = {
            k: Prepared(tuple(data[k]["parts"]), tuple(data[k]["slots"])) for k in ("html", "text")
        }
        return CompiledEmail(**{**data, **parts, "dropped": tuple(data["dropped"])})
    except (KeyError, TypeError) as e:
        log.warning("ignoring render cache file %s of another format (%s)", path, e)
        return None
