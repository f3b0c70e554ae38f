"""Real IMAP clients (mbsync, offlineimap3, imapclient) against a simulated provider.

One place for what every client test needs: a small fixture mailbox served with a profile (plus
quirks) over implicit TLS, each command-line client's config written into a tmp dir, its run,
and its Maildir read back with the client's documented rewrites undone.

TLS is verified, never switched off: the clients trust the world's self-signed certificate as
their CA. They connect to ``localhost`` rather than ``127.0.0.1`` because mbsync 1.4.4 and
offlineimap3 match the host only against the certificate's DNS names (its IP entry is ignored:
"certificate owner does not match hostname 127.0.0.1"); the certificate names ``localhost`` too.
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imapclient
import pytest

from simulators.fixtures import FixtureSpec, populate
from simulators.imap.names import Names
from simulators.launcher import ServerHandle, SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Store

USER, PASSWORD = "alice", "secret"
HOST = "localhost"  # see the module docstring


def fixture_store(profile: str, *, seed: int = 3, messages: int = 12) -> Store:
    """A small generated mailbox, Gmail-shaped (labels, All Mail) for the gmail profiles."""
    store = Store()
    account = store.add_account(USER, PASSWORD)
    spec = FixtureSpec(seed=seed, messages=messages, folders=6, gmail_labels=profile.startswith("gmail"))
    populate(account, spec, load_profile(profile))
    return store


@contextmanager
def serve(store: Store, profile: str, *quirks: str) -> Iterator[tuple[SimulatorWorld, ServerHandle]]:
    """The store served over implicit TLS (as imap.gmail.com and outlook.office365.com are, on
    993) with ``profile`` plus ``quirks`` given as on the command line (``name:key=value``)."""
    p = load_profile(profile).with_quirks([QuirkSpec.parse(q) for q in quirks])
    with SimulatorWorld(store, p) as world:
        yield world, world.start_imap(implicit_tls=True)


def imap_client(world: SimulatorWorld, handle: ServerHandle) -> imapclient.IMAPClient:
    """An imapclient connection that verifies the world's certificate (not yet logged in)."""
    context = ssl.create_default_context(cafile=str(world.cafile))
    return imapclient.IMAPClient(HOST, handle.port, ssl=True, ssl_context=context, timeout=10)


def expected_folders(store: Store, profile: str) -> dict[str, list[bytes]]:
    """Wire name → sorted message bytes (LF line ends) of every selectable folder."""
    p = load_profile(profile)
    names = Names(p.imap.delimiter, p.imap.namespace_prefix)
    return {
        names.to_wire(path).decode("ascii"): sorted(m.raw.replace(b"\r\n", b"\n") for m in folder.messages)
        for path, folder in store.account(USER).folders.items()
        if folder.selectable
    }


def maildir_messages(box: Path) -> list[bytes]:
    return [f.read_bytes() for sub in ("cur", "new") for f in sorted((box / sub).iterdir())]


@dataclass
class ClientRun:
    returncode: int
    output: str  # stdout and stderr together: where each client writes what varies
    root: Path  # the local Maildir tree


class Client:
    """A command-line IMAP client: config text, command line, Maildir layout, rewrites."""

    name = ""
    binary = ""

    def config(self, handle: ServerHandle, cafile: Path, root: Path, work: Path, password: str) -> str:
        raise NotImplementedError

    def command(self, rc: Path) -> list[str]:
        raise NotImplementedError

    def local_box(self, root: Path, wire: str) -> Path:
        """The Maildir the client files a remote folder into (names stay modified UTF-7)."""
        raise NotImplementedError

    def undo(self, data: bytes) -> bytes:
        """The message as the server sent it (with LF line ends): the client's changes undone."""
        return data

    def run(self, handle: ServerHandle, cafile: Path, tmp: Path, *, password: str = PASSWORD,
            extra: tuple[str, ...] = ()) -> ClientRun:
        if shutil.which(self.binary) is None:
            pytest.skip(f"{self.binary} is not installed")
        root, work = tmp / f"{self.name}-mail", tmp / f"{self.name}-state"
        root.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        rc = tmp / f"{self.name}rc"
        rc.write_text(self.config(handle, cafile, root, work, password))
        rc.chmod(0o600)  # it holds the (test) password
        done = subprocess.run([*self.command(rc), *extra], capture_output=True, text=True, timeout=60)
        return ClientRun(done.returncode, done.stdout + done.stderr, root)

    def received(self, run: ClientRun, wires) -> dict[str, list[bytes]]:
        """Wire name → sorted message bytes, as the server sent them, of each local folder."""
        out = {}
        for wire in wires:
            box = self.local_box(run.root, wire)
            out[wire] = sorted(self.undo(m) for m in maildir_messages(box)) if (box / "cur").is_dir() else []
        return out


class Mbsync(Client):
    """isync 1.4: `SubFolders Verbatim` nests the Maildirs as the server's folders are nested."""

    name = binary = "mbsync"
    _TUID = re.compile(rb"^X-TUID: [A-Za-z0-9+/]{12}\n", re.MULTILINE)

    def config(self, handle, cafile, root, work, password):
        return (
            f"IMAPAccount sim\nHost {HOST}\nPort {handle.port}\nUser {USER}\nPass {password}\n"
            f"SSLType {'IMAPS' if handle.implicit_tls else 'None'}\nCertificateFile {cafile}\nAuthMechs LOGIN\n\n"
            "IMAPStore sim-remote\nAccount sim\n\n"
            f"MaildirStore local\nPath {root}/\nInbox {root}/INBOX\nSubFolders Verbatim\n\n"
            "Channel sim\nFar :sim-remote:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\nSyncState *\n"
        )

    def command(self, rc):
        return ["mbsync", "-c", str(rc), "-a"]

    def local_box(self, root, wire):
        return root.joinpath(*wire.split("/"))

    def undo(self, data):
        """mbsync stores LF line ends and adds one ``X-TUID`` header line (its transaction id)
        to each new message; those are its only changes."""
        head, sep, body = data.partition(b"\n\n")
        head, count = self._TUID.subn(b"", head + b"\n")
        assert count == 1, data[:300]
        return head[:-1] + sep + body


class OfflineImap(Client):
    """offlineimap3 (8.0): the local Maildir repository joins levels with ``.`` (its default
    ``sep``); the remote is read-only. It stores LF line ends and changes nothing else."""

    name = binary = "offlineimap"

    def __init__(self, remote_type: str = "IMAP"):
        self.remote_type = remote_type  # "Gmail" for its Gmail repository type

    def config(self, handle, cafile, root, work, password):
        return (
            f"[general]\naccounts = sim\nmetadata = {work}\n\n"
            "[Account sim]\nlocalrepository = local\nremoterepository = remote\n\n"
            f"[Repository local]\ntype = Maildir\nlocalfolders = {root}\n\n"
            f"[Repository remote]\ntype = {self.remote_type}\nremotehost = {HOST}\nremoteport = {handle.port}\n"
            f"remoteuser = {USER}\nremotepass = {password}\nssl = {'yes' if handle.implicit_tls else 'no'}\n"
            f"sslcacertfile = {cafile}\nreadonly = True\n"
        )

    def command(self, rc):
        return ["offlineimap", "-c", str(rc), "-o", "-u", "basic"]

    def local_box(self, root, wire):
        return root / wire.replace("/", ".")


class OfflineImapGmailLabels(OfflineImap):
    """offlineimap3's Gmail label sync (``synclabels = yes`` into a GmailMaildir): it fetches
    X-GM-LABELS with each message and adds one ``X-Keywords:`` header line holding them, sorted
    and comma-separated, as sent (modified UTF-7); nothing else changes."""

    _KEYWORDS = re.compile(rb"^X-Keywords:[ ]?(.*)\n", re.MULTILINE)

    def __init__(self):
        super().__init__("Gmail")

    def config(self, handle, cafile, root, work, password):
        text = super().config(handle, cafile, root, work, password)
        return text.replace("[Account sim]\n", "[Account sim]\nsynclabels = yes\n").replace(
            "type = Maildir", "type = GmailMaildir")

    def labels(self, data: bytes) -> set[str]:
        found = self._KEYWORDS.findall(data.partition(b"\n\n")[0] + b"\n")
        assert len(found) == 1, data[:300]
        return {label for label in found[0].decode().split(",") if label}

    def undo(self, data):
        head, sep, body = data.partition(b"\n\n")
        head, count = self._KEYWORDS.subn(b"", head + b"\n")
        assert count == 1, data[:300]
        return head[:-1] + sep + body


MBSYNC = Mbsync()


def client_for(name: str, profile: str) -> Client:
    """The client as its users set it up for the provider (offlineimap: its Gmail type for Gmail)."""
    if name == "mbsync":
        return MBSYNC
    return OfflineImap("Gmail" if profile.startswith("gmail") else "IMAP")


CLIENTS = ("mbsync", "offlineimap")


def pull(name: str | Client, profile: str, tmp: Path, *quirks: str, password: str = PASSWORD,
         extra: tuple[str, ...] = ()) -> tuple[Store, Client, ClientRun]:
    """One run of a CLI client (by name, or as set up) against a fresh fixture mailbox served
    with ``profile`` + ``quirks``."""
    store = fixture_store(profile)
    client = client_for(name, profile) if isinstance(name, str) else name
    with serve(store, profile, *quirks) as (world, handle):
        run = client.run(handle, world.cafile, tmp, password=password, extra=extra)
    return store, client, run
