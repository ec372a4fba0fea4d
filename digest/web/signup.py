"""The sign-up pages of `digest serve`: the form (`GET /subscribe`), the
request (`POST /subscribe`, a form or JSON), and the confirmation link
(`GET /confirm` shows a button, its `POST` confirms: link scanners only GET).
What a request or a confirmation does is decided in digest/deliver/signup.py.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import available_timezones

from digest.config import Settings
from digest.deliver import signup
from digest.deliver.message import bounce_mailbox
from digest.errors import SignupError, TooManyRequests
from digest.store import Database
from digest.store.pool import Connections
from digest.web.http import Request, Response
from digest.web.mailer import Mailer

log = logging.getLogger(__name__)
HONEYPOT = "website"  # a field people never see; bots fill it in


class Site(Protocol):
    """What the pages need of the application (digest/web/app.py)."""

    settings: Settings
    list_id: str
    connections: Connections

    def db(self) -> Database: ...
    def secret(self) -> bytes: ...
    def url(self, path: str, token: str = "") -> str: ...
    def page(self, template: str, status: int = 200, **values: Any) -> Response: ...
    def message(
        self, status: int, heading: str, paragraphs: list[str], action: Any = None
    ) -> Response: ...
    def bad_token(self) -> Response: ...
    def render_text(self, template: str, **values: Any) -> str: ...


class SignupPages:
    """The handlers, and the mailer that sends what they ask for."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = site.settings
        hours = timedelta(hours=site.settings.confirm_hours)  # its link is dead by then
        self.mailer = Mailer(site.settings.smtp, site.connections, hours)
        self.zones = available_timezones()

    def routes(self) -> dict[str, dict[str, Any]]:
        return {
            "/subscribe": {"GET": self.form, "POST": self.subscribe, "OPTIONS": self.preflight},
            "/confirm": {"GET": self.confirm_page, "POST": self.confirm},
        }

    # The form and the request

    def form(self, request: Request, status: int = 200, error: str = "", **values: Any) -> Response:
        chosen = set(values.get("sections", ()))
        sections = [
            {"key": s.key, "title": s.title, "checked": not chosen or s.key in chosen}
            for s in self.settings.sections
        ]
        response = self.site.page(
            "web/subscribe.html.j2",
            status,
            heading=f"Subscribe to {self.settings.title}",
            sections=sections,
            error=error,
            email=values.get("email", ""),
            name=values.get("name", ""),
            # With local time, readers may say where they are (no script can
            # tell the page); empty means the digest's own zone.
            zones=sorted(self.zones) if self.settings.local_time else [],
            zone=values.get("timezone", ""),
            digest_zone=self.settings.timezone,
            action=self.site.url("/subscribe"),
            robots="index",
        )
        if status == 200:
            return Response(200, response.body, cache="public, max-age=300")
        return response

    def subscribe(self, request: Request) -> Response:
        wants_json = "application/json" in request.environ.get("HTTP_ACCEPT", "")
        fields = _fields(request)
        try:
            asked = signup.checked(
                fields.get("email", ""),
                fields.get("name", ""),
                fields.get("sections", []),
                fields.get("timezone", ""),
                [s.key for s in self.settings.sections],
                self.zones,
            )
            if fields.get(HONEYPOT):
                # A bot: the same answer as anyone gets, and nothing happens.
                return self.asked(asked.address, wants_json)
            client = str(request.environ.get("REMOTE_ADDR", ""))
            db, secret = self.site.db(), self.site.secret()
            mail = signup.ask(db, self.settings.signup, secret, self.site.list_id, asked, client)
        except TooManyRequests as e:
            return self.refused(429, str(e), wants_json, fields)
        except SignupError as e:
            return self.refused(422, str(e), wants_json, fields)
        if mail is not None:
            self.send(mail)
        return self.asked(asked.address, wants_json)

    def asked(self, address: str, wants_json: bool) -> Response:
        """The one answer to every sign-up that could be taken, whatever the
        database knows of the address."""
        text = (
            f"If {address} can receive mail, a message with a link to confirm is on its "
            f"way there. Nothing is sent to you until you open it; the link works for "
            f"{self.settings.confirm_hours} hours."
        )
        if wants_json:
            return _json(202, {"ok": True, "message": text})
        return self.site.message(200, "Check your inbox", [text])

    def refused(
        self, status: int, error: str, wants_json: bool, fields: dict[str, Any]
    ) -> Response:
        if wants_json:
            response = _json(status, {"ok": False, "error": error})
        else:
            response = self.form(Request({}), status, error, **fields)
        if status == 429:
            return Response(
                status, response.body, response.content_type, (("Retry-After", "3600"),)
            )
        return response

    def preflight(self, request: Request) -> Response:
        """CORS preflight, so a script on another site may post JSON here."""
        return Response(
            204,
            headers=(
                ("Access-Control-Allow-Methods", "POST"),
                ("Access-Control-Allow-Headers", "Content-Type, Accept"),
                ("Access-Control-Max-Age", "86400"),
            ),
        )

    def send(self, mail: signup.Mail) -> None:
        base = self.settings.base_url.rstrip("/")
        title = self.settings.title
        if mail.kind == signup.CONFIRM:
            template, subject = "web/confirm-mail.txt.j2", f"Confirm your subscription to {title}"
            links = {"confirm_url": f"{base}/confirm?token={quote(mail.token, safe='')}"}
        else:
            template, subject = "web/subscribed-mail.txt.j2", f"You are subscribed to {title}"
            token = quote(mail.token, safe="")
            links = {
                "preferences_url": f"{base}/preferences?token={token}",
                "unsubscribe_url": f"{base}/unsubscribe?token={token}",
            }
        text = self.site.render_text(
            template, name=mail.name, hours=self.settings.confirm_hours, **links
        )
        raw = signup.message(self.settings.from_addr, mail.address, mail.name, subject, text)
        self.mailer.submit(bounce_mailbox(self.settings.sender), mail.address, raw)

    # The confirmation link

    def confirm_page(self, request: Request) -> Response:
        token = request.arg("token")
        found = signup.judge(
            self.site.db(),
            self.settings.signup,
            self.site.secret(),
            self.site.list_id,
            token,
            datetime.now(UTC),
        )
        if found.state != signup.VALID:
            return self.outcome(found)
        return self.site.page(
            "web/confirm.html.j2",
            heading="Confirm your subscription",
            email=found.email,
            confirm_url=self.site.url("/confirm", token),
        )

    def confirm(self, request: Request) -> Response:
        request.body()
        found = signup.confirm(
            self.site.db(),
            self.settings.signup,
            self.site.secret(),
            self.site.list_id,
            request.arg("token"),
            datetime.now(UTC),
        )
        if found.state == signup.DONE:
            log.info("sign-up confirmed: %s", found.email)
        return self.outcome(found)

    def outcome(self, found: signup.Confirmation) -> Response:
        if found.state == signup.INVALID:
            return self.site.bad_token()
        again = {"url": self.site.url("/subscribe"), "label": "Sign up again", "method": "get"}
        answers: dict[str, tuple[int, str, str, Any]] = {
            signup.DONE: (200, "You are subscribed", "The next edition will reach you.", None),
            signup.ALREADY: (200, "Already confirmed", "This link has been used already.", None),
            signup.EXPIRED: (410, "This link has expired", "Please sign up again.", again),
            signup.REPLACED: (
                410,
                "A newer link was sent",
                "You signed up again since: please use the link in the newest message.",
                None,
            ),
            signup.BOUNCED: (
                200,
                "We cannot reach this address",
                "Mail to this address bounced, so nothing is sent to it; write to the sender.",
                None,
            ),
        }
        status, heading, text, action = answers[found.state]
        return self.site.message(status, heading, [text], action)


def _fields(request: Request) -> dict[str, Any]:
    """The request's fields, from a form or a JSON object: email, name,
    sections (a list), timezone and the honeypot."""
    kind = str(request.environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data = json.loads(request.body().decode("utf-8", "replace"))
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return {}
        sections = data.get("sections") or []
        return {
            "email": str(data.get("email") or ""),
            "name": str(data.get("name") or ""),
            "sections": [str(s) for s in sections] if isinstance(sections, list) else [],
            "timezone": str(data.get("timezone") or ""),
            HONEYPOT: str(data.get(HONEYPOT) or ""),
        }
    form = request.form()

    def one(name: str) -> str:
        return (form.get(name) or [""])[0]

    return {
        "email": one("email"),
        "name": one("name"),
        "sections": form.get("section", []),
        "timezone": one("timezone"),
        HONEYPOT: one(HONEYPOT),
    }


def _json(status: int, value: dict[str, Any]) -> Response:
    return Response(
        status,
        json.dumps(value).encode(),
        "application/json",
        (("Access-Control-Allow-Origin", "*"),),
    )
