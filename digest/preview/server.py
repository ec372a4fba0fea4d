"""The preview server: a standard-library HTTP server on 127.0.0.1 that shows
the email for desktop and mobile side by side, its text twin and its size,
and tells open pages to reload (Server-Sent Events) when a watched file changes.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import watchfiles

from digest.config import Settings
from digest.errors import DigestError
from digest.preview.build import SAMPLE, Built, View, build, view_for
from digest.render import BUDGET_BYTES, template_environment, template_folders

log = logging.getLogger(__name__)

EMAIL_POLICY = (
    "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline';"
    " frame-ancestors 'self'"
)
KEEPALIVE_SECONDS = 15.0


@dataclass(frozen=True)
class WatchTargets:
    """Folders watched whole, and single files watched through their folder."""

    trees: tuple[Path, ...]
    files: frozenset[Path]

    @property
    def file_folders(self) -> tuple[Path, ...]:
        return tuple(sorted({f.parent for f in self.files if f.parent.is_dir()}))


def watch_targets(settings: Settings, edition_file: Path | None) -> WatchTargets:
    """Templates, digest.toml, every configured source, and the edition file."""
    trees: set[Path] = {p.resolve() for p in template_folders(settings.look) if p.is_dir()}
    files: set[Path] = set()
    if settings.config_path is not None:
        files.add(settings.config_path.resolve())
    if edition_file is not None:
        files.add(edition_file.resolve())
    files.add(settings.subscribers.resolve())
    for section in settings.sections:
        for source in section.sources:
            path = Path(source.removeprefix("file://")).resolve()
            if "://" in source and not source.startswith("file://"):
                continue
            (trees if path.is_dir() else files).add(path)
    return WatchTargets(tuple(sorted(trees)), frozenset(files))


class PreviewServer:
    """`start()` serves on 127.0.0.1 (port 0 picks a free one); `stop()` ends it."""

    def __init__(
        self,
        load: Callable[[], Settings],
        edition_file: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.load, self.edition_file = load, edition_file
        self.settings = load()
        self.built = build(self.settings, edition_file)
        self.version = 1
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.generation = threading.Event()  # set to make the watchers look again
        self.rebuilding = threading.Lock()
        chosen = self.settings.preview_port if port is None else port
        self.httpd = ThreadingHTTPServer(("127.0.0.1", chosen), PreviewHandler)
        self.httpd.daemon_threads = True
        setattr(self.httpd, "preview", self)  # noqa: B010 - the handler's way back
        self.threads: list[threading.Thread] = []
        self.watching = {True: threading.Event(), False: threading.Event()}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def start(self) -> None:
        jobs: list[Callable[[], None]] = [
            self.httpd.serve_forever,
            lambda: self._watch(recursive=True),
            lambda: self._watch(recursive=False),
        ]
        for job in jobs:
            thread = threading.Thread(target=job, daemon=True, name="digest-preview")
            thread.start()
            self.threads.append(thread)
        # Return once both watchers listen, so no change made right after is missed.
        for ready in self.watching.values():
            ready.wait(timeout=10)

    def stop(self) -> None:
        self.stopping.set()
        self.generation.set()
        with self.changed:
            self.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self.threads:
            thread.join(timeout=10)

    def rebuild(self, config_changed: bool = False) -> None:
        """Build again from the files as they are now, and tell open pages."""
        with self.rebuilding:
            before = watch_targets(self.settings, self.edition_file)
            error = ""
            if config_changed:
                try:
                    self.settings = self.load()
                except DigestError as e:
                    error = f"digest.toml: {e}"
            built = build(self.settings, self.edition_file)
            if error:
                built = Built(built.settings, None, built.readers, built.problems, error)
            self.built = built
            if watch_targets(self.settings, self.edition_file) != before:
                previous, self.generation = self.generation, threading.Event()
                previous.set()
        with self.changed:
            self.version += 1
            self.changed.notify_all()
        log.info("preview rebuilt (version %d)", self.version)

    def _watch(self, recursive: bool) -> None:
        while not self.stopping.is_set():
            generation = self.generation
            targets = watch_targets(self.settings, self.edition_file)
            paths = targets.trees if recursive else targets.file_folders
            if not paths:
                self.watching[recursive].set()
                generation.wait()
                continue
            try:
                self._watch_once(paths, targets, recursive, generation)
            except (OSError, RuntimeError) as e:
                # A watched folder vanished or the OS refused: look again shortly.
                log.warning("preview: watching %s failed (%s); retrying", paths, e)
                generation.wait(1.0)

    def _watch_once(
        self,
        paths: tuple[Path, ...],
        targets: WatchTargets,
        recursive: bool,
        generation: threading.Event,
    ) -> None:
        for changes in watchfiles.watch(
            *paths,
            recursive=recursive,
            debounce=200,
            stop_event=generation,
            raise_interrupt=False,
            # An empty yield every so often tells us the watcher is up.
            rust_timeout=200,
            yield_on_timeout=True,
        ):
            self.watching[recursive].set()
            if not changes:
                continue
            touched = {Path(p).resolve() for _, p in changes}
            if recursive or touched & targets.files:
                config = self.settings.config_path
                self.rebuild(config is not None and config.resolve() in touched)

    def wait_for_change(self, seen: int, timeout: float) -> int:
        with self.changed:
            self.changed.wait_for(
                lambda: self.version != seen or self.stopping.is_set(), timeout=timeout
            )
            return self.version


class PreviewHandler(BaseHTTPRequestHandler):
    """Routes: / (the page), /email.html, /email.txt, /state.json, /events."""

    server: ThreadingHTTPServer

    @property
    def owner(self) -> PreviewServer:
        owner: PreviewServer = getattr(self.server, "preview")  # noqa: B009
        return owner

    def do_GET(self) -> None:
        if not self._local_host():
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"use http://127.0.0.1/\n")
            return
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        routes: dict[str, Callable[[dict[str, str]], None]] = {
            "/": self._page,
            "/email.html": self._email_html,
            "/email.txt": self._email_text,
            "/state.json": self._state,
            "/events": self._events,
        }
        route = routes.get(url.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
            return
        route(query)

    def _local_host(self) -> bool:
        # The page shows names and addresses from the subscriber list: refuse
        # a foreign host name pointed at 127.0.0.1 (DNS rebinding).
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        return host in ("127.0.0.1", "localhost", "::1")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("preview: " + format, *args)

    def _send(self, status: HTTPStatus, kind: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # The preview shows names and addresses: no other site may frame it
        # (the email is framed by the preview page itself; see EMAIL_POLICY).
        headers.setdefault("Content_Security_Policy", "frame-ancestors 'none'")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _view(self, query: dict[str, str]) -> tuple[View | None, str]:
        built = self.owner.built
        try:
            return view_for(built, query.get("reader", SAMPLE)), built.error
        except DigestError as e:
            return None, str(e)

    def _page(self, query: dict[str, str]) -> None:
        view, error = self._view(query)
        built = self.owner.built
        values = page_values(built, view, error, self.owner.version, self.owner.edition_file)
        env = template_environment(built.settings.look)
        body = env.get_template("preview.html.j2").render(values)
        self._send(HTTPStatus.OK, "text/html", body.encode())

    def _email_html(self, query: dict[str, str]) -> None:
        view, error = self._view(query)
        if view is None or view.compiled is None:
            why = view.why_nothing if view is not None else ""
            message = error or f"This reader gets no email: {why or 'nothing to show'}."
            body = f"<!doctype html><p style='font:16px sans-serif;padding:24px'>{_escape(message)}"
        else:
            # Links in the preview open a new tab instead of replacing the frame.
            body = view.html.replace("<head>", '<head><base target="_blank">', 1)
        self._send(HTTPStatus.OK, "text/html", body.encode(), Content_Security_Policy=EMAIL_POLICY)

    def _email_text(self, query: dict[str, str]) -> None:
        view, error = self._view(query)
        text = view.text if view is not None and view.compiled is not None else error
        self._send(HTTPStatus.OK, "text/plain", (text or "No email for this reader.\n").encode())

    def _state(self, query: dict[str, str]) -> None:
        view, error = self._view(query)
        built = self.owner.built
        values = page_values(built, view, error, self.owner.version, self.owner.edition_file)
        values.pop("text", None)
        self._send(HTTPStatus.OK, "application/json", json.dumps(values, default=str).encode())

    def _events(self, query: dict[str, str]) -> None:
        since = query.get("since") or str(self.owner.version)
        if not since.isdigit() or len(since) > 18:
            self._send(HTTPStatus.BAD_REQUEST, "text/plain", b"since must be a whole number\n")
            return
        seen = int(since)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            while not self.owner.stopping.is_set():
                now = self.owner.wait_for_change(seen, KEEPALIVE_SECONDS)
                message = f"event: reload\ndata: {now}\n\n" if now != seen else ": still here\n\n"
                seen = now
                self.wfile.write(message.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def page_values(
    built: Built,
    view: View | None,
    error: str,
    version: int,
    edition_file: Path | None,
) -> dict[str, Any]:
    """What the preview page shows, also served as /state.json."""
    compiled = view.compiled if view is not None else None
    size = compiled.html_bytes if compiled is not None else 0
    edition = built.edition
    return {
        "version": version,
        "error": error,
        "problems": list(built.problems),
        "origin": str(edition_file) if edition_file else "the configured sources",
        "edition": {"id": edition.id, "number": edition.number} if edition else None,
        "readers": [{"key": r.key, "label": r.label} for r in built.readers],
        "reader": view.reader.key if view is not None else SAMPLE,
        "empty": view is not None and compiled is None and not error,
        "why_nothing": view.why_nothing if view is not None else "",
        "note": view is not None and view.note,
        "subject": compiled.subject if compiled else "",
        "preheader": compiled.preheader if compiled else "",
        "size": size,
        "budget": BUDGET_BYTES,
        "percent": round(100 * size / BUDGET_BYTES),
        "dropped": list(compiled.dropped) if compiled else [],
        "text": view.text if view is not None else "",
    }
