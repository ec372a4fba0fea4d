"""A real IMAP server for tests: Debian's Dovecot, started in the foreground
with a private configuration in a temporary folder (TLS with a certificate
made on the spot, one user with a plain password, Maildir storage), on a
free port of 127.0.0.1, and stopped afterwards."""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.tls import self_signed

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "imap-test-password"


@dataclass(frozen=True)
class ImapServer:
    port: int
    ca_file: Path
    user: str = USER
    password: str = PASSWORD

    def client(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            client.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
        finally:
            client.logout()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accounts() -> tuple[str, str, int]:
    """Who runs the server and owns the mail: as root, Dovecot's own accounts
    and `nobody` (it refuses root for mail); otherwise the current user."""
    if os.geteuid() == 0:
        return "dovecot", "dovenull", pwd.getpwnam("nobody").pw_uid
    me = pwd.getpwuid(os.geteuid()).pw_name
    return me, me, os.geteuid()


def _config(folder: Path, port: int, cert: Path, key: Path) -> Path:
    internal, login, uid = _accounts()
    home = folder / "home"
    home.mkdir()
    os.chown(home, uid, -1)
    (folder / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    config = folder / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {min(uid, 100)}
mail_location = maildir:~/Maildir
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={pwd.getpwuid(uid).pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""
    )
    return config


@contextlib.contextmanager
def dovecot() -> Iterator[ImapServer]:
    """Dovecot on a free port of 127.0.0.1 for the block's duration. Its folder
    is made under the system's temporary folder, not pytest's: Dovecot's own
    accounts must be able to reach it."""
    folder = Path(tempfile.mkdtemp(prefix="digest-dovecot-"))
    os.chmod(folder, 0o755)
    cert, key = self_signed(folder, "imap")
    port = _free_port()
    config = _config(folder, port, cert, key)
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)])
    try:
        server = ImapServer(port, cert)
        _wait_until_ready(server, process, folder)
        yield server
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_until_ready(server: ImapServer, process: subprocess.Popen[bytes], folder: Path) -> None:
    for _ in range(200):
        if process.poll() is not None:
            log = (folder / "dovecot.log").read_text(errors="replace")
            raise RuntimeError(f"dovecot stopped at start: {log[-2000:]}")
        with contextlib.suppress(OSError):
            server.client().logout()
            return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not answer within 10 s")
