"""`digest serve`: sign-up (digest/web/signup.py), unsubscribe (RFC 8058
one-click included), preferences and the archive of past editions, as a plain
WSGI application run by waitress.

No cookies and no sessions: the signed token in each link is the only
authority, so a forged request from another site has nothing to ride on.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import waitress

from digest.config import Settings
from digest.deliver import tokens
from digest.deliver.lookup import SectionsIndex
from digest.deliver.message import sender_address
from digest.errors import ConfigError
from digest.render import builtin_templates
from digest.store import Database, audience, meta
from digest.store.pool import Connections
from digest.web.archive import ArchivePages
from digest.web.http import (
    BASE_HEADERS,
    MAX_BODY,
    BodyTooLarge,
    Request,
    Response,
    StartResponse,
    status_line,
)
from digest.web.signup import SignupPages

log = logging.getLogger(__name__)

SERVER_THREADS = 4  # waitress threads, and database connections in the pool
EDITION_PATH = re.compile(r"/archive/([A-Za-z0-9._:+-]{1,80})/?")


class App:
    """The WSGI application. One instance serves every thread of the server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = urlsplit(settings.base_url).path.rstrip("/")
        self.list_id = tokens.list_id(
            settings.title, sender_address(settings.from_addr), settings.list_id
        )
        self.pages = _page_environment(settings)
        self.local = threading.local()
        self.connections = Connections(settings.database, SERVER_THREADS)
        self._secret: bytes | None = None
        self.listed = SectionsIndex(settings.subscribers)
        self.routes: dict[str, dict[str, Callable[[Request], Response]]] = {
            "/": {"GET": lambda r: self.redirect("/archive")},
            "/unsubscribe": {"GET": self.confirm_page, "POST": self.unsubscribe},
            "/resubscribe": {"POST": self.resubscribe},
            "/preferences": {"GET": self.preferences_page, "POST": self.save_preferences},
            "/healthz": {"GET": lambda r: Response(200, b"ok\n", "text/plain; charset=utf-8")},
        }
        self.signup = SignupPages(self)
        self.archive = ArchivePages(self)
        self.routes.update(self.signup.routes())
        self.routes.update(self.archive.routes())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            with self.connections.connection() as db:
                self.local.db = db
                response = self.route(request)
        except BodyTooLarge:
            response = self.message(413, "Too large", ["That request was too large."])
        except Exception:
            log.exception("digest serve: %s %s failed", request.method, request.path)
            response = self.message(500, "Something went wrong", ["Please try again later."])
        start_response(status_line(response.status), self.headers(response))
        return [b"" if request.method == "HEAD" else response.body]

    def headers(self, response: Response) -> list[tuple[str, str]]:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            ("Content-Security-Policy", response.csp),
            ("Cache-Control", response.cache),
            *BASE_HEADERS,
            *response.headers,
        ]
        if self.settings.base_url.startswith("https://"):
            headers.append(("Strict-Transport-Security", "max-age=31536000"))
        return headers

    # Routing

    def route(self, request: Request) -> Response:
        path, method = request.path, request.method
        handlers = self.routes.get(path.rstrip("/") or "/")
        match = EDITION_PATH.fullmatch(path)
        if handlers is None and match:
            edition_id = match.group(1)
            handlers = {"GET": lambda r: self.archive.edition(edition_id)}
        if handlers is None:
            return self.message(404, "Not found", ["There is no page at this address."])
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = ", ".join(sorted(handlers))
            response = self.message(405, "Method not allowed", [f"Use {allowed}."])
            return Response(405, response.body, headers=(("Allow", allowed),))
        return handler(request)

    # Shared pieces

    def db(self) -> Database:
        """The connection this request borrowed from the pool."""
        db: Database = self.local.db
        return db

    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = meta.signing_key(self.db(), self.settings.secret_key)
        return self._secret

    def email_of(self, request: Request) -> str | None:
        return tokens.verify(self.secret(), self.list_id, request.arg("token"))

    def url(self, path: str, token: str = "") -> str:
        return f"{self.prefix}{path}" + (f"?token={quote(token, safe='')}" if token else "")

    def page(self, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("robots", "noindex")
        body = self.pages.get_template(template).render(
            language=self.settings.language,
            digest_title=self.settings.title,
            prefix=self.prefix,
            **values,
        )
        return Response(status, body.encode("utf-8"))

    def render_text(self, template: str, **values: Any) -> str:
        """A plain-text template (a mail), not HTML-escaped."""
        return self.pages.get_template(template).render(digest_title=self.settings.title, **values)

    def message(
        self, status: int, heading: str, paragraphs: list[str], action: Any = None
    ) -> Response:
        return self.page(
            "web/message.html.j2", status, heading=heading, paragraphs=paragraphs, action=action
        )

    def redirect(self, path: str) -> Response:
        return Response(303, b"", headers=(("Location", self.url(path)),))

    def bad_token(self) -> Response:
        return self.message(
            400,
            "This link is not valid",
            [
                "The link is incomplete or was not made by this newsletter, so nothing "
                "was changed.",
                "Open the link from your email again, or copy all of it into the address bar.",
            ],
        )

    # Unsubscribe

    def confirm_page(self, request: Request) -> Response:
        email = self.email_of(request)
        if email is None:
            return self.bad_token()
        token = request.arg("token")
        reason, _ = audience.state_of(self.db(), email)
        if reason is not None:
            undo = {"url": self.url("/resubscribe", token), "label": "Subscribe again"}
            return self.message(
                200,
                "You are already unsubscribed",
                [f"Nothing is sent to {email}."],
                action=undo if reason.startswith("unsubscribed") else None,
            )
        return self.page(
            "web/unsubscribe.html.j2",
            heading="Unsubscribe",
            email=email,
            unsubscribe_url=self.url("/unsubscribe", token),
            preferences_url=self.url("/preferences", token),
        )

    def unsubscribe(self, request: Request) -> Response:
        """Any POST with a valid token: our button, or a mailbox provider's
        one-click request (body `List-Unsubscribe=One-Click`, RFC 8058)."""
        email = self.email_of(request)
        form = request.form()
        if email is None:
            return self.bad_token()
        how = "one-click" if form.get("List-Unsubscribe") == ["One-Click"] else "web page"
        db = self.db()
        reason, _ = audience.state_of(db, email)
        if reason is None:
            audience.suppress(db, email, f"unsubscribed: {how}")
            log.info("unsubscribed %s (%s)", email, how)
        action = {"url": self.url("/resubscribe", request.arg("token")), "label": "Subscribe again"}
        return self.message(
            200,
            "You are unsubscribed",
            [f"{email} will get no more emails from {self.settings.title}."],
            action=action if reason is None or reason.startswith("unsubscribed") else None,
        )

    def resubscribe(self, request: Request) -> Response:
        email = self.email_of(request)
        request.body()
        if email is None:
            return self.bad_token()
        if audience.unsuppress(self.db(), email, "unsubscribed"):
            return self.message(200, "Welcome back", [f"{email} is subscribed again."])
        reason, _ = audience.state_of(self.db(), email)
        why = (
            "Mail to this address bounced, so it stays paused; write to the sender to fix it."
            if reason
            else f"{email} was not unsubscribed; nothing changed."
        )
        return self.message(200, "Nothing to undo", [why])

    # Preferences

    def preferences_page(self, request: Request, message: str = "", status: int = 200) -> Response:
        email = self.email_of(request)
        if email is None:
            return self.bad_token()
        reason, chosen = audience.state_of(self.db(), email)
        if chosen is None:
            chosen = self.listed.sections_of(email) or frozenset()
        known = {s.key for s in self.settings.sections}
        # Nothing chosen (or nothing known) means every section, as in the CSV.
        everything = not (chosen & known)
        sections = [
            {"key": s.key, "title": s.title, "checked": everything or s.key in chosen}
            for s in self.settings.sections
        ]
        token = request.arg("token")
        saved = "Saved. The next edition follows your choice." if request.arg("saved") else ""
        return self.page(
            "web/preferences.html.j2",
            status,
            heading="Your sections",
            email=email,
            sections=sections,
            message=message or saved,
            suppressed=reason is not None,
            resubscribe_url=self.url("/resubscribe", token)
            if reason and reason.startswith("unsubscribed")
            else "",
            preferences_url=self.url("/preferences", token),
            unsubscribe_url=self.url("/unsubscribe", token),
        )

    def save_preferences(self, request: Request) -> Response:
        email = self.email_of(request)
        form = request.form()
        if email is None:
            return self.bad_token()
        known = [s.key for s in self.settings.sections]
        chosen = {key for key in form.get("section", []) if key in known}
        if not chosen:
            message = "Choose at least one section, or unsubscribe from everything below."
            return self.preferences_page(request, message, 422)
        # Every section stored as "all", so sections added later arrive too.
        audience.set_preferences(self.db(), email, () if len(chosen) == len(known) else chosen)
        token = request.arg("token")
        return Response(
            303, b"", headers=(("Location", self.url("/preferences", token) + "&saved=1"),)
        )


def _page_environment(settings: Settings) -> jinja2.Environment:
    """Page templates: a user's templates folder first, then the built-in ones."""
    folders = [str(p) for p in (settings.templates, builtin_templates()) if p]
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        # Pages are HTML; the mails `digest serve` sends are plain text.
        autoescape=lambda name: not (name or "").endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
    )


def create_server(settings: Settings, host: str | None = None, port: int | None = None) -> Any:
    """A waitress server for the app, bound but not yet running (tests use port 0)."""
    host = host or settings.serve_host
    port = settings.serve_port if port is None else port
    app = App(settings)
    try:
        server = waitress.create_server(
            app,
            host=host,
            port=port,
            url_prefix=urlsplit(settings.base_url).path.rstrip("/"),
            max_request_body_size=MAX_BODY,
            ident="digest",
            threads=SERVER_THREADS,
            # Idle sockets are closed after serve_idle_timeout (checked at half
            # that interval), so a pile of them cannot hold every slot for
            # waitress's default two minutes and stall /healthz.
            connection_limit=settings.serve_connection_limit,
            channel_timeout=settings.serve_idle_timeout,
            cleanup_interval=max(1, settings.serve_idle_timeout // 2),
            # Behind a reverse proxy every request comes from the proxy: take the
            # client's address from its X-Forwarded-For (for the sign-up limits),
            # and only from that proxy.
            **_proxy(settings.trusted_proxy),
        )
    except OSError as e:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); set DIGEST_SERVE_HOST "
            "and DIGEST_SERVE_PORT to a free local address"
        ) from e
    server.digest = app  # the application itself (waitress may wrap it)
    return server


def _proxy(trusted: str) -> dict[str, Any]:
    if not trusted:
        return {}
    return {
        "trusted_proxy": trusted,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-for"},
        "clear_untrusted_proxy_headers": True,
    }


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run `digest serve` until interrupted."""
    server = create_server(settings, host, port)
    server.run()
