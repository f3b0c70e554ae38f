"""Writing contacts, events, tasks and notes to CardDAV/CalDAV (RFC 6352, RFC 4791) with requests.

Collections live below the home given by the URL (``dav+http://alice@host:port/alice/``; the
default path is ``/<user>/``, Radicale's layout). One collection per source folder, named from the
folder (``collection_name``): an address book made with extended MKCOL (RFC 5689) or a calendar
made with MKCALENDAR restricted to the component it will hold. Resources are PUT with
``If-None-Match: *`` under a name derived from the item's UID, so a second copy of the same item
is answered 412 by the server itself: never a duplicate, whatever the checkpoint says.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit
from xml.etree import ElementTree as ET

import requests

from migrator.errors import AuthenticationFailed, ConnectionFailed, ProtocolError, TlsFailure
from migrator.urls import Endpoint
from transcripts.tap_http import RecordingAdapter

DAV, CARDDAV, CALDAV = "DAV:", "urn:ietf:params:xml:ns:carddav", "urn:ietf:params:xml:ns:caldav"
# kind → (collection type, component, resource suffix, content type)
KINDS = {
    "contact": ("addressbook", None, ".vcf", "text/vcard; charset=utf-8"),
    "event": ("calendar", "VEVENT", ".ics", "text/calendar; charset=utf-8"),
    "task": ("calendar", "VTODO", ".ics", "text/calendar; charset=utf-8"),
    "note": ("calendar", "VJOURNAL", ".ics", "text/calendar; charset=utf-8"),
}
_SAFE = re.compile(r"^[A-Za-z0-9@._-]{1,120}$")


def resource_name(uid: str, kind: str) -> str:
    """The resource's file name: the UID when it is path-safe, else its SHA-1 (stable either way)."""
    base = uid if _SAFE.match(uid) and not uid.startswith(".") else hashlib.sha1(uid.encode()).hexdigest()
    return base + KINDS[kind][2]


def collection_name(folder_path: tuple[str, ...], kind: str) -> str:
    """``("Calendar", "Team")`` → ``calendar-team`` (ASCII, stable; the display name keeps the original)."""
    text = "-".join(folder_path).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if not slug or slug != text.replace(" ", "-"):
        slug = (slug or kind) + "-" + hashlib.sha1("/".join(folder_path).encode()).hexdigest()[:8]
    return slug


def mkcol_body(kind: str, display_name: str) -> tuple[str, bytes]:
    """(method, XML body) creating a collection for ``kind``."""
    ctype, component, _, _ = KINDS[kind]
    name = _xml_text(display_name)
    if ctype == "addressbook":
        return "MKCOL", (
            '<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            f"<D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype>"
            f"<D:displayname>{name}</D:displayname></D:prop></D:set></D:mkcol>"
        ).encode()
    return "MKCALENDAR", (
        '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f"<D:set><D:prop><D:displayname>{name}</D:displayname><C:supported-calendar-component-set>"
        f'<C:comp name="{component}"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>'
    ).encode()


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_collections(xml: bytes) -> dict[str, str]:
    """PROPFIND Depth 1 multistatus → {href: "addressbook" | "calendar" | "collection"}."""
    out: dict[str, str] = {}
    for resp in ET.fromstring(xml).iter(f"{{{DAV}}}response"):
        href = resp.findtext(f"{{{DAV}}}href") or ""
        rtype = resp.find(f".//{{{DAV}}}resourcetype")
        if rtype is None or rtype.find(f"{{{DAV}}}collection") is None:
            continue
        if rtype.find(f"{{{CARDDAV}}}addressbook") is not None:
            out[href] = "addressbook"
        elif rtype.find(f"{{{CALDAV}}}calendar") is not None:
            out[href] = "calendar"
        else:
            out[href] = "collection"
    return out


def parse_hrefs(xml: bytes) -> set[str]:
    """Every non-collection href of a multistatus (the resources of a collection)."""
    out = set()
    for resp in ET.fromstring(xml).iter(f"{{{DAV}}}response"):
        rtype = resp.find(f".//{{{DAV}}}resourcetype")
        if rtype is None or rtype.find(f"{{{DAV}}}collection") is None:
            out.add(resp.findtext(f"{{{DAV}}}href") or "")
    return out


@dataclass
class PutResult:
    created: bool  # False: the resource was already there (412), nothing written
    href: str


class DavSink:
    """One CardDAV/CalDAV account. Thread-safe enough for one worker: requests.Session per sink."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0):
        url = endpoint.url
        self.endpoint = endpoint
        scheme = "http" if url.scheme == "dav+http" else "https"
        path = url.path if url.path not in ("", "/") else f"/{quote(url.user)}/"  # Radicale's layout
        self.home = f"{scheme}://{url.host}:{url.port}{path if path.endswith('/') else path + '/'}"
        self.session = requests.Session()
        self.session.auth = (url.user, endpoint.password.reveal())
        self.session.verify = endpoint.trusted_ca() or url.tls_verify
        if endpoint.recorder is not None:
            adapter = RecordingAdapter(endpoint.recorder)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self.timeout = timeout
        self._known: dict[str, str] | None = None

    def where(self, what: str = "") -> str:
        return f"destination {self.endpoint.url.display()}" + (f" {what}" if what else "")

    def close(self) -> None:
        self.session.close()

    def _request(self, method: str, url: str, **kw) -> requests.Response:
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.exceptions.SSLError as exc:
            raise TlsFailure(f"{self.where()}: TLS: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(f"{self.where()}: {method} {urlsplit(url).path}: {exc}") from None
        if resp.status_code == 401:
            raise AuthenticationFailed(f"{self.where()}: credentials refused ({method} → 401)")
        return resp

    def collections(self) -> dict[str, str]:
        """{collection href path: type} below the home (created on first use when missing)."""
        body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>'
        resp = self._request("PROPFIND", self.home, data=body, headers={"Depth": "1", "Content-Type": "application/xml"})
        if resp.status_code == 404:
            made = self._request("MKCOL", self.home)
            if made.status_code not in (201, 405):
                raise ProtocolError(f"{self.where('home')}: MKCOL {urlsplit(self.home).path} → {made.status_code}")
            return {}
        if resp.status_code != 207:
            raise ProtocolError(f"{self.where('home')}: PROPFIND → {resp.status_code} {resp.reason}")
        home = urlsplit(self.home).path
        return {h: t for h, t in parse_collections(resp.content).items() if h.rstrip("/") != home.rstrip("/")}

    def ensure_collection(self, name: str, kind: str, display_name: str) -> str:
        """The collection's URL; created (MKCOL/MKCALENDAR) unless it exists with the right type."""
        url = urljoin(self.home, quote(name) + "/")
        if self._known is None:
            self._known = self.collections()
        path = urlsplit(url).path
        wanted = KINDS[kind][0]
        have = self._known.get(path)
        if have == wanted:
            return url
        if have is not None:
            raise ProtocolError(f"{self.where()}: {path} exists as {have}, not {wanted}")
        method, body = mkcol_body(kind, display_name)
        resp = self._request(method, url, data=body, headers={"Content-Type": "application/xml; charset=utf-8"})
        if resp.status_code not in (200, 201):
            raise ProtocolError(f"{self.where()}: {method} {path} → {resp.status_code} {resp.text[:200]}")
        self._known[path] = wanted
        return url

    def put(self, collection_url: str, uid: str, kind: str, text: str) -> PutResult:
        """PUT once: 201/204 = created, 412 = already there (If-None-Match: *)."""
        url = urljoin(collection_url, quote(resource_name(uid, kind)))
        resp = self._request("PUT", url, data=text.encode("utf-8"),
                             headers={"Content-Type": KINDS[kind][3], "If-None-Match": "*"})
        if resp.status_code in (200, 201, 204):
            return PutResult(True, urlsplit(url).path)
        if resp.status_code == 412:
            return PutResult(False, urlsplit(url).path)
        raise ProtocolError(f"{self.where()}: PUT {urlsplit(url).path} → {resp.status_code} {resp.text[:300].strip()}")

    def resources(self, collection_url: str) -> set[str]:
        """The hrefs of a collection's resources (for counts and verification)."""
        body = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>'
        resp = self._request("PROPFIND", collection_url, data=body, headers={"Depth": "1", "Content-Type": "application/xml"})
        if resp.status_code != 207:
            raise ProtocolError(f"{self.where()}: PROPFIND {urlsplit(collection_url).path} → {resp.status_code}")
        return parse_hrefs(resp.content)

    def get(self, href: str) -> str:
        resp = self._request("GET", urljoin(self.home, href))
        if resp.status_code != 200:
            raise ProtocolError(f"{self.where()}: GET {href} → {resp.status_code}")
        return resp.content.decode("utf-8")
