"""Where bounce reports are read: a Maildir, an mbox file, or an IMAP
mailbox. Each source hands out the messages not yet handled and marks each
one it is told is done, so the next run does not read it again: a Maildir
moves it into a subfolder, an mbox file gets a header, IMAP a keyword.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from digest.config import Bounces
from digest.errors import ConfigError, DeliveryError

HANDLED, OTHER = "handled", "other"  # a bounce report, or other mail
FOLDERS = {HANDLED: ".digest-bounces", OTHER: ".digest-other"}
MARK = "X-Digest-Bounce"
KEYWORDS = {HANDLED: "$DigestBounce", OTHER: "$DigestOther"}


@dataclass(frozen=True)
class Item:
    """One message: where it is in the source, and its bytes."""

    ref: str
    raw: bytes


class Source(Protocol):
    description: str

    def messages(self) -> Iterator[Item]: ...
    def done(self, item: Item, how: str) -> None: ...
    def close(self) -> None: ...


def open_source(spec: str, settings: Bounces) -> Source:
    """A Maildir folder, an mbox file, or imaps://user@host[:port]/FOLDER."""
    if re.match(r"imaps?://", spec, re.IGNORECASE):
        return ImapSource(spec, settings)
    path = Path(spec).expanduser()
    if (path / "cur").is_dir() and (path / "new").is_dir():
        return MaildirSource(path)
    if path.is_file():
        return MboxSource(path)
    raise ConfigError(
        f"bounce source {spec!r} is neither a Maildir (a folder with cur/ and new/), an mbox "
        "file nor an imaps:// URL; check DIGEST_BOUNCE_SOURCE or the command's argument"
    )


class MaildirSource:
    """A Maildir: new/ and cur/ are read; a message done moves (a rename, so
    atomic) into the Maildir++ subfolder .digest-bounces or .digest-other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"Maildir {path}"

    def messages(self) -> Iterator[Item]:
        for sub in ("new", "cur"):
            for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                if entry.is_file() and not entry.name.startswith("."):
                    with contextlib.suppress(FileNotFoundError):  # taken by another reader
                        yield Item(entry.path, Path(entry.path).read_bytes())

    def done(self, item: Item, how: str) -> None:
        folder = self.path / FOLDERS[how]
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "maildirfolder").touch()
        name = os.path.basename(item.ref)
        if ":2," not in name:
            name += ":2,S" if how == HANDLED else ":2,"
        with contextlib.suppress(FileNotFoundError):
            os.rename(item.ref, folder / "cur" / name)

    def close(self) -> None:
        pass


class MboxSource:
    """An mbox file, locked (as mail delivery agents lock it) while read;
    a message done gets an X-Digest-Bounce header, written when closed."""

    def __init__(self, path: Path) -> None:
        self.description = f"mbox {path}"
        self.box = mailbox.mbox(path, create=False)
        try:
            self.box.lock()
        except mailbox.ExternalClashError as e:
            raise DeliveryError(f"the mbox {path} is locked by another program: {e}") from e
        self.changed = False

    def messages(self) -> Iterator[Item]:
        for key in list(self.box.keys()):  # a Mailbox iterates over messages, not keys
            if MARK not in self.box.get_message(key):
                yield Item(key, self.box.get_bytes(key))

    def done(self, item: Item, how: str) -> None:
        message = self.box.get_message(item.ref)
        message[MARK] = how
        self.box[item.ref] = message
        self.changed = True

    def close(self) -> None:
        try:
            if self.changed:
                self.box.flush()
        finally:
            self.box.unlock()
            self.box.close()


class ImapSource:
    """An IMAP mailbox over TLS (imaps://, or imap:// with STARTTLS), the
    password from DIGEST_BOUNCE_PASSWORD; a message done gets a keyword."""

    def __init__(self, spec: str, settings: Bounces) -> None:
        url = urlsplit(spec)
        self.host = url.hostname or ""
        self.user = unquote(url.username or "")
        self.folder = unquote(url.path.lstrip("/")) or "INBOX"
        secure = url.scheme.lower() == "imaps"
        port = url.port or (993 if secure else 143)
        self.description = f"IMAP {self.user}@{self.host}:{port}/{self.folder}"
        if not self.host or not self.user:
            raise ConfigError(
                f"bounce source {spec!r} needs a user and a host: imaps://user@host/INBOX"
            )
        if not settings.password:
            raise ConfigError(f"set DIGEST_BOUNCE_PASSWORD to read {self.description}")
        self.client = self._connect(secure, port, settings)
        self._login(settings.password)

    def _connect(self, secure: bool, port: int, settings: Bounces) -> imaplib.IMAP4:
        cafile = str(settings.ca_file) if settings.ca_file else None
        try:
            context = ssl.create_default_context(cafile=cafile)
            if secure:
                return imaplib.IMAP4_SSL(self.host, port, ssl_context=context, timeout=30)
            client = imaplib.IMAP4(self.host, port, timeout=30)
            client.starttls(ssl_context=context)  # refuses to go on in clear
            return client
        except ssl.SSLCertVerificationError as e:
            raise DeliveryError(
                f"the TLS certificate of {self.description} is not valid ({e.verify_message}); "
                "set DIGEST_BOUNCE_CA_FILE to the CA that signed it"
            ) from None
        except (OSError, imaplib.IMAP4.error) as e:
            raise DeliveryError(
                f"cannot reach {self.description} ({e or type(e).__name__}); check the host, the "
                "port and that it offers TLS"
            ) from None

    def _login(self, password: str) -> None:
        try:
            self.client.login(self.user, password)
            kind, _ = self.client.select(_quoted(self.folder))
        except imaplib.IMAP4.error:
            self.client.shutdown()
            # Never the server's words: some echo the credentials back.
            raise DeliveryError(
                f"{self.description} refused the login; check the user in the URL and "
                "DIGEST_BOUNCE_PASSWORD"
            ) from None
        if kind != "OK":
            self.client.logout()
            raise DeliveryError(f"{self.description}: no such folder; check the URL's path")

    def messages(self) -> Iterator[Item]:
        query = f"UNKEYWORD {KEYWORDS[HANDLED]} UNKEYWORD {KEYWORDS[OTHER]}"
        kind, found = self.client.uid("SEARCH", None, query)  # type: ignore[arg-type]
        if kind != "OK":
            raise DeliveryError(f"{self.description}: the search failed ({found!r})")
        for uid in (found[0] or b"").split():
            kind, parts = self.client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if kind == "OK" and isinstance(raw, bytes):
                yield Item(uid.decode(), raw)

    def done(self, item: Item, how: str) -> None:
        seen = " \\Seen" if how == HANDLED else ""  # a person still sees other mail as new
        flags = f"({KEYWORDS[how]}{seen})"
        kind, answer = self.client.uid("STORE", item.ref, "+FLAGS.SILENT", flags)
        if kind != "OK":
            raise DeliveryError(
                f"{self.description} would not mark message {item.ref} ({answer!r}); "
                "the server must allow keywords (PERMANENTFLAGS \\*)"
            )

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.client.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
