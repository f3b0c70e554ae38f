"""A throwaway real Dovecot 2.3 (IMAP, POP3, LMTP) on free loopback ports.

Each ``DovecotServer`` owns a temporary directory holding a self-contained configuration (nothing
is read from /etc/dovecot), a passwd-file per user, the run/state directories, the log and the
Maildirs.
It is the reference peer: the destination of real migrations and the server the ``generic``
profile must match. Several instances can run at once (pytest-xdist), each on its own ports.

Dovecot refuses to store mail as root, so mail belongs to the ``vmail`` system user (created here
when missing and we are root). Maildir keeps INTERNALDATE as the file's mtime: the instant survives
a round trip, the zone offset does not — compare instants.

    with DovecotServer() as dovecot:
        dovecot.add_user("alice", "secret")
        dovecot.load_account(account)       # a simulators.store.Account
        dovecot.url("alice")                # "imap://alice@127.0.0.1:40123"
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from scenarios.peers.process import PeerProcess, free_ports, start_on_free_ports
from simulators.profiles import SPECIAL_USE
from simulators.store import Account, Folder, MailItem

MAIL_USER = "vmail"
LIBEXEC = Path("/usr/lib/dovecot")
# Executables the master starts for the services we configure.
SERVICE_BINARIES = ("imap", "imap-login", "pop3", "pop3-login", "lmtp", "auth")
# Dovecot's own unprivileged users (made by its Debian package): auth runs as one, logins as the other.
DOVECOT_USERS = ("dovecot", "dovenull")
START_TIMEOUT = 15.0
# Dovecot stats a passwd-file at most once a second; a changed password needs that long to show.
PASSWD_FILE_RESYNC = 1.1
# Folders Dovecot marks special-use by name, as the generic profile names them. (\All and \Flagged
# need Dovecot's virtual plugin, so they stay plain folders here.)
SPECIAL_FOLDERS = {SPECIAL_USE[key]: key.capitalize() for key in ("sent", "drafts", "trash", "junk", "archive")}
# Batching of MULTIAPPEND while loading: bounded by count and by bytes so a 20 MB message goes alone.
APPEND_BATCH_COUNT = 100
APPEND_BATCH_BYTES = 8_000_000
# Folders loaded in parallel: Dovecot serves each connection in its own process.
LOAD_CONNECTIONS = 4
# Flags a client may not set on APPEND (RFC 3501: \Recent is the server's).
UNSETTABLE_FLAGS = frozenset({"\\Recent"})

CONFIG_TEMPLATE = """\
# Written by quirkmail's scenarios.peers.dovecot; reads nothing from /etc/dovecot.
protocols = imap pop3 lmtp
listen = 127.0.0.1
instance_name = {instance}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_uid = {mail_user}
mail_gid = {mail_user}
first_valid_uid = 1
mail_location = maildir:{dir}/mail/%u/Maildir
# A throwaway server: durability is worthless, an fsync per saved message is not free.
mail_fsync = never
# Test loads are bursty and messages can be tens of MB.
default_vsz_limit = 1G
imap_max_line_length = 1M
# Dovecot waits 2 s before refusing a login, and after failures from an IP it delays that IP's
# next logins (anvil's auth penalty, up to 15 s); tests of refused logins need neither.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  # One file per user: Dovecot re-reads a passwd-file at most once a second, so a user added
  # right after another one logged in would stay unknown for up to a second in a shared file.
  args = scheme=PLAIN username_format=%u {dir}/users/%u
}}
userdb {{
  driver = static
  args = home={dir}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{special_mailboxes}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
protocol pop3 {{
  mail_max_userip_connections = 100
}}
"""


class DovecotError(RuntimeError):
    """Dovecot could not be set up, started, stopped or asked; the message says which and why."""


def availability() -> str | None:
    """None when a throwaway Dovecot can run here, else the reason (for ``pytest.skip``)."""
    for tool in ("dovecot", "doveadm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd)"
    missing = [name for name in SERVICE_BINARIES if not (LIBEXEC / name).exists()]
    if missing:
        return f"Dovecot services missing in {LIBEXEC}: {', '.join(missing)} (install dovecot-imapd/-pop3d/-lmtpd)"
    for user in DOVECOT_USERS:
        if not _user_exists(user):
            return f"system user {user!r} is missing (made by the dovecot-core package)"
    if os.geteuid() != 0:
        return "not root: Dovecot needs root to switch to its mail and login users"
    return None


class DovecotServer(PeerProcess):
    """A Dovecot master process with its own config, ports and mail, removed again on ``stop()``."""

    host = "127.0.0.1"
    LOGS = ("stdout.log", "dovecot.log")
    Error = DovecotError

    def __init__(self) -> None:
        super().__init__()
        self.imap_port = 0
        self.pop3_port = 0
        self.lmtp_port = 0
        self._users: dict[str, str] = {}

    availability = staticmethod(availability)

    # Life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None:
            raise DovecotError("Dovecot is already running")
        reason = availability()
        if reason:
            raise DovecotError(f"cannot start Dovecot: {reason}")
        _ensure_mail_user()
        self._dir = Path(tempfile.mkdtemp(prefix="quirkmail-dovecot-"))
        try:
            self._prepare_dir()
            start_on_free_ports(self._attempt_start, self._terminate, self._log_tail, DovecotError)
        except BaseException:
            self._terminate()
            self._remove_dir()
            raise

    def _attempt_start(self) -> None:
        self.imap_port, self.pop3_port, self.lmtp_port = free_ports(3)
        self.config_path.write_text(self._config(), encoding="utf-8")
        self._launch()
        self._wait_ready()

    def stop(self) -> None:
        """SIGTERM the master (it stops its children), wait, SIGKILL the group if it hangs."""
        super().stop()
        self._users.clear()

    # Paths -----------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.directory / "dovecot.log"

    def mail_dir(self, user: str) -> Path:
        """The user's Maildir root (INBOX's cur/new/tmp; other folders are ``.Name`` below it)."""
        return self.directory / "mail" / user / "Maildir"

    # Users and tools ------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """Add a user, usable at once; re-passwording one takes effect within a second."""
        # The passwd-file format has no quoting, and the user name is also a file name.
        if not user or user.startswith(".") or any(c in user for c in ":/\r\n\0"):
            raise ValueError(f"bad Dovecot user name {user!r}: empty, leading '.', or ':', '/', line break, NUL")
        if not password or any(c in password for c in ":\r\n\0"):
            raise ValueError(f"bad password for Dovecot user {user!r}: empty, or ':', line break, NUL")
        known = user in self._users
        self._users[user] = password
        # Written whole and renamed into place, so the auth process never reads half a file.
        tmp = self.directory / "users" / f".{user}.tmp"
        tmp.write_text(f"{user}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
        _share_with_dovecot(tmp)
        tmp.replace(self.directory / "users" / user)
        if known:
            time.sleep(PASSWD_FILE_RESYNC)

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``doveadm -c CONFIG ARGS``; raises ``DovecotError`` with stderr when it fails."""
        cmd = ["doveadm", "-c", str(self.config_path), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise DovecotError(
                f"doveadm {' '.join(args[:1])} failed (exit {result.returncode}): {result.stderr.strip()}"
            )
        return result

    def url(self, user: str) -> str:
        return f"imap://{quote(user, safe='')}@{self.host}:{self.imap_port}"

    def load_account(self, account: Account, *, connections: int = LOAD_CONNECTIONS) -> None:
        """Copy every folder of ``account`` into the Dovecot user of the same name, over IMAP.

        Folders are created with "/" between parts (Sent, Drafts, Trash, Junk and Archive are
        special-use by configuration); messages are APPENDed (MULTIAPPEND batches, folders in
        parallel over ``connections``) with their bytes, flags and INTERNALDATE, zone included.
        The user is added with the account's password if it is not there yet. A refused
        message raises ``DovecotError`` naming it.
        Dovecot stores a bare LF as CRLF and a NUL as 0x80: such messages come back changed.
        """
        if account.username not in self._users:
            self.add_user(account.username, account.password)
        folders = sorted(account.folders.values(), key=lambda f: f.path)  # parents first
        with self._session(account) as client:
            for folder in folders:
                name = "/".join(folder.path)
                if name != "INBOX" and not client.folder_exists(name):
                    client.create_folder(name)
        # One folder per connection at a time keeps each folder's UIDs in the store's order.
        with ThreadPoolExecutor(max_workers=max(1, connections), thread_name_prefix="dovecot-load") as pool:
            for done in [pool.submit(self._append_folder, account, folder) for folder in folders if folder.messages]:
                done.result()

    def _append_folder(self, account: Account, folder: Folder) -> None:
        from imapclient.exceptions import IMAPClientError

        name = "/".join(folder.path)
        batches = list(_batches(folder.messages))
        stored = 0
        try:
            with self._session(account) as client:
                for batch in batches:
                    client.multiappend(name, [_append_entry(m) for m in batch])
                    stored += 1
            return
        except IMAPClientError:
            pass
        # With LITERAL+ the rest of the refused batch arrived as garbage commands, so that session
        # is lost. MULTIAPPEND is all or nothing (RFC 3502): go on from the refused batch, one
        # message at a time, to name the culprit.
        with self._session(account) as client:
            for message in (m for batch in batches[stored:] for m in batch):
                try:
                    client.multiappend(name, [_append_entry(message)])
                except IMAPClientError as exc:
                    raise DovecotError(
                        f"Dovecot refused {account.username}'s message UID {message.uid}"
                        f" in {name!r} ({message.size} bytes): {exc}"
                    ) from None

    @contextlib.contextmanager
    def _session(self, account: Account) -> Iterator:
        from imapclient import IMAPClient  # only load_account needs it: keep importing this module cheap

        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=120)
        try:
            client.login(account.username, account.password)
            yield client
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        client.logout()

    # Internals -------------------------------------------------------------------------------

    def _prepare_dir(self) -> None:
        root = self.directory
        # The mail user and Dovecot's auth user must traverse the directory (mkdtemp gives 0700).
        root.chmod(0o755)
        for sub in ("run", "state"):
            (root / sub).mkdir()
        mail = root / "mail"
        mail.mkdir()
        mail_user = pwd.getpwnam(MAIL_USER)
        os.chown(mail, mail_user.pw_uid, mail_user.pw_gid)
        users = root / "users"
        users.mkdir()
        _share_with_dovecot(users, 0o750)

    def _config(self) -> str:
        special = "\n".join(
            f"  mailbox {name} {{\n    special_use = {use}\n  }}" for use, name in SPECIAL_FOLDERS.items()
        )
        return CONFIG_TEMPLATE.format(
            dir=self.directory,
            instance=f"quirkmail-{self.directory.name}",
            mail_user=MAIL_USER,
            special_mailboxes=special,
            imap_port=self.imap_port,
            pop3_port=self.pop3_port,
            lmtp_port=self.lmtp_port,
        )

    def _launch(self) -> None:
        log = self.directory / "stdout.log"
        with log.open("ab") as out:
            # A session of its own, so a hung master's children can be killed as one group.
            self._process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = [self.imap_port, self.pop3_port, self.lmtp_port]
        while pending:
            if self._process is None or self._process.poll() is not None:
                code = self._process.returncode if self._process else None
                raise DovecotError(f"Dovecot exited during start-up (exit {code}):\n{self._log_tail()}")
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"Dovecot not ready after {START_TIMEOUT:.0f} s (port {pending[0]} closed):\n{self._log_tail()}"
                )
            if _greets(self.host, pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.05)

def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _ensure_mail_user() -> None:
    if _user_exists(MAIL_USER):
        return
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", MAIL_USER],
        capture_output=True,
        text=True,
    )
    # Exit 9: another worker created it meanwhile.
    if result.returncode not in (0, 9) or not _user_exists(MAIL_USER):
        raise DovecotError(f"cannot create system user {MAIL_USER!r}: {result.stderr.strip()}")


def _share_with_dovecot(path: Path, mode: int = 0o640) -> None:
    """Let Dovecot's auth process (user ``dovecot``) read what holds passwords, nobody else."""
    group = pwd.getpwnam("dovecot").pw_gid
    os.chown(path, 0, group)
    path.chmod(mode)


def _greets(host: str, port: int) -> bool:
    """True when something on the port accepts a connection and sends a first line."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as conn:
            return bool(conn.recv(64))
    except OSError:
        return False


def _batches(messages: list[MailItem]) -> Iterator[list[MailItem]]:
    batch: list[MailItem] = []
    size = 0
    for message in messages:
        if batch and (len(batch) >= APPEND_BATCH_COUNT or size + message.size > APPEND_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(message)
        size += message.size
    if batch:
        yield batch


def _append_entry(message: MailItem) -> dict:
    flags = sorted(f for f in message.flags if f not in UNSETTABLE_FLAGS)
    return {"msg": message.raw, "flags": flags, "date": message.internaldate}
