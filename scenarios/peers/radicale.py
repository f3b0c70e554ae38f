"""A throwaway real Radicale 3 (CalDAV/CardDAV) on a free loopback port.

Each ``RadicaleServer`` owns a temporary directory holding its config (nothing is read from
/etc/radicale or ~/.config), a plain htpasswd file, the collection storage and the log. It is the
real peer for contacts, calendars, tasks and notes: the destination of PIM migrations.

Radicale re-serialises what it stores (property order, line folding, VTIMEZONE layout), so compare
what it returns as parsed objects (``scenarios.pim_compare``), never as bytes. A second item with a
UID already present in the collection is refused with 409 Conflict.

    with RadicaleServer() as radicale:
        radicale.add_user("alice", "secret")
        radicale.create_addressbook("alice", "contacts")
        radicale.put("alice", "contacts", "c1.vcf", vcard_text)
        radicale.url("alice")              # "dav+http://alice@127.0.0.1:40123/"
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote

import requests

from scenarios.peers.process import PeerProcess, free_ports, start_on_free_ports
from scenarios.pim_compare import COMPONENT_KIND, DavCollection, dav_collections, dav_members
from simulators.store import Account, PimItem

START_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
COMPONENT_OF_KIND = {kind: component for component, kind in COMPONENT_KIND.items()}
CONTENT_TYPES = {".vcf": "text/vcard; charset=utf-8", ".ics": "text/calendar; charset=utf-8"}

CONFIG_TEMPLATE = """\
# Written by quirkmail's scenarios.peers.radicale.
[server]
hosts = {host}:{port}

[auth]
type = htpasswd
htpasswd_filename = {htpasswd}
htpasswd_encryption = plain
# No pause after a wrong password: tests try wrong ones on purpose.
delay = 0

[rights]
type = owner_only

[storage]
filesystem_folder = {storage}

[logging]
level = warning
"""

MKCALENDAR_BODY = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
 <D:set><D:prop>
  <D:displayname>{name}</D:displayname>
  <C:supported-calendar-component-set>{components}</C:supported-calendar-component-set>
 </D:prop></D:set>
</C:mkcalendar>
"""
MKCOL_ADDRESSBOOK_BODY = """<?xml version="1.0" encoding="utf-8"?>
<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav">
 <D:set><D:prop>
  <D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>
  <D:displayname>{name}</D:displayname>
 </D:prop></D:set>
</D:mkcol>
"""


class RadicaleError(RuntimeError):
    """Radicale could not be started or refused a request; the message says which and why."""


def availability() -> str | None:
    """None when Radicale can run here, else the reason (for ``pytest.skip``)."""
    if importlib.util.find_spec("radicale") is None:
        return "Radicale is not installed (pip install radicale)"
    return None


class RadicaleServer(PeerProcess):
    """A ``python -m radicale`` process with its own config, port and storage, removed on ``stop()``."""

    host = "127.0.0.1"
    LOGS = ("radicale.log",)
    Error = RadicaleError

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self._users: dict[str, str] = {}

    availability = staticmethod(availability)

    # Life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._process is not None:
            raise RadicaleError("Radicale is already running")
        reason = availability()
        if reason:
            raise RadicaleError(f"cannot start Radicale: {reason}")
        self._dir = Path(tempfile.mkdtemp(prefix="quirkmail-radicale-"))
        try:
            self._htpasswd.write_text("", encoding="utf-8")
            self._htpasswd.chmod(0o600)
            start_on_free_ports(self._attempt_start, self._terminate, self._log_tail, RadicaleError)
        except BaseException:
            self._terminate()
            self._remove_dir()
            raise

    def _attempt_start(self) -> None:
        (self.port,) = free_ports(1)
        config = CONFIG_TEMPLATE.format(
            host=self.host, port=self.port, htpasswd=self._htpasswd, storage=self.directory / "collections"
        )
        self._config.write_text(config, encoding="utf-8")
        self._launch()
        self._wait_ready()

    def stop(self) -> None:
        super().stop()
        self._users.clear()

    # Users and URLs ---------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """Add (or change) a user in the plain htpasswd file; Radicale re-reads it per request."""
        if ":" in user or "\n" in user + password:
            raise RadicaleError(f"user name {user!r} or its password cannot go into an htpasswd file")
        self._users[user] = password
        lines = "".join(f"{name}:{secret}\n" for name, secret in self._users.items())
        self._htpasswd.write_text(lines, encoding="utf-8")

    def url(self, user: str) -> str:
        return f"dav+http://{quote(user, safe='')}@{self.host}:{self.port}/"

    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def collection_url(self, user: str, collection: str) -> str:
        return f"{self.base_url()}/{quote(user, safe='')}/{quote(collection, safe='')}/"

    def session(self, user: str) -> requests.Session:
        session = requests.Session()
        session.auth = (user, self._users[user])
        return session

    # Collections and items -------------------------------------------------------------------

    def create_addressbook(self, user: str, name: str) -> str:
        body = MKCOL_ADDRESSBOOK_BODY.format(name=name)
        return self._make_collection(user, name, "MKCOL", body)

    def create_calendar(self, user: str, name: str, components: tuple[str, ...] = ("VEVENT",)) -> str:
        """A calendar collection for these component types (VEVENT, VTODO, VJOURNAL)."""
        comps = "".join(f'<C:comp name="{c}"/>' for c in components)
        return self._make_collection(user, name, "MKCALENDAR", MKCALENDAR_BODY.format(name=name, components=comps))

    def collections(self, user: str) -> list[DavCollection]:
        """The user's address books and calendars (PROPFIND Depth 1 on the user's home)."""
        with self.session(user) as session:
            return dav_collections(session, f"{self.base_url()}/{quote(user, safe='')}/")

    def put(self, user: str, collection: str, name: str, text: str) -> requests.Response:
        """PUT one item (``name`` ends in .vcf or .ics); the response is returned as is (201, 409 ...)."""
        url = self.collection_url(user, collection) + quote(name, safe="")
        headers = {"Content-Type": CONTENT_TYPES[Path(name).suffix]}
        with self.session(user) as session:
            return session.put(url, data=text.encode("utf-8"), headers=headers, timeout=HTTP_TIMEOUT)

    def get(self, user: str, collection: str, name: str) -> str:
        url = self.collection_url(user, collection) + quote(name, safe="")
        with self.session(user) as session:
            response = session.get(url, timeout=HTTP_TIMEOUT)
        if response.status_code != 200:
            raise RadicaleError(f"GET {url}: {response.status_code} {response.reason}")
        return response.text

    def items(self, user: str, collection: str) -> dict[str, str]:
        """What a collection holds: resource name → its text as Radicale serves it."""
        with self.session(user) as session:
            out = {}
            for url in dav_members(session, self.collection_url(user, collection)):
                response = session.get(url, timeout=HTTP_TIMEOUT)
                if response.status_code != 200:
                    raise RadicaleError(f"GET {url}: {response.status_code} {response.reason}")
                out[unquote(url.rstrip("/").rsplit("/", 1)[-1])] = response.content.decode("utf-8")
            return out

    def load_account(self, user: str, account: Account) -> dict[tuple[str, str], str]:
        """PUT every non-mail item of a store account; one collection per folder and kind.

        Returns (folder path joined with "/", kind) → collection name: the folder's name in lower
        case ("calendar"), with the kind appended where a folder holds several ("deleted-items-event").
        """
        groups: dict[tuple[str, str], list[PimItem]] = {}
        for path, folder in account.folders.items():
            for item in folder.items:
                groups.setdefault(("/".join(path), item.kind.value), []).append(item)
        names = {}
        for (folder, kind), items in groups.items():
            name = _slug(folder)
            if sum(1 for f, _ in groups if f == folder) > 1:
                name = f"{name}-{kind}"
            if kind == "contact":
                self.create_addressbook(user, name)
            else:
                self.create_calendar(user, name, (COMPONENT_OF_KIND[kind],))
            for item in items:
                response = self.put(user, name, item.item_id + (".vcf" if kind == "contact" else ".ics"), item.payload)
                if response.status_code != 201:
                    raise RadicaleError(
                        f"PUT {folder}/{item.item_id} into {name}: {response.status_code} {response.text[:200]}"
                    )
            names[folder, kind] = name
        return names

    def _make_collection(self, user: str, name: str, method: str, body: str) -> str:
        url = self.collection_url(user, name)
        with self.session(user) as session:
            # The principal's home appears on its first authenticated request.
            session.request(
                "PROPFIND", f"{self.base_url()}/{quote(user, safe='')}/", headers={"Depth": "0"}, timeout=HTTP_TIMEOUT
            )
            response = session.request(
                method,
                url,
                data=body.encode("utf-8"),
                headers={"Content-Type": "application/xml"},
                timeout=HTTP_TIMEOUT,
            )
        if response.status_code != 201:
            raise RadicaleError(f"{method} {url}: {response.status_code} {response.reason} {response.text[:200]}")
        return url

    # Process ---------------------------------------------------------------------------------

    @property
    def _config(self) -> Path:
        return self.directory / "config"

    @property
    def _htpasswd(self) -> Path:
        return self.directory / "users"

    def _launch(self) -> None:
        with (self.directory / "radicale.log").open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(self._config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Radicale would also read ~/.config/radicale/config: point HOME at our directory.
                env={**os.environ, "HOME": str(self.directory)},
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process is None or self._process.poll() is not None:
                code = self._process.returncode if self._process else None
                raise RadicaleError(f"Radicale exited during start-up (exit {code}):\n{self._log_tail()}")
            try:
                requests.get(self.base_url() + "/", timeout=1.0, allow_redirects=False)
                return
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RadicaleError(f"Radicale not ready after {START_TIMEOUT:.0f} s:\n{self._log_tail()}")
            time.sleep(0.05)


def _slug(folder: str) -> str:
    """A collection name from a folder path: "Deleted Items" → "deleted-items"."""
    return "-".join(folder.lower().replace("/", " ").split()) or "collection"
