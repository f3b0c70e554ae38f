"""Reading a mailbox over EWS with exchangelib: the folder tree with classes, item ids, items.

Connection: a direct service endpoint (``/EWS/Exchange.asmx``, no autodiscover), Basic or an
OAuth bearer token, exchangelib's ``FailFast`` policy (waiting is done here, where it is
bounded, recorded and shrinks the parallelism: ``Throttle``).

TLS: exchangelib builds its HTTP adapter from the class attribute
``BaseProtocol.HTTP_ADAPTER_CLS`` — process-wide. Replacing it per endpoint would leak one run's
CA into another's connections, so ``_TrustAdapter`` is installed once and looks the trust up per
(host, port) in a registry that ``EwsSource`` fills: endpoints without an entry get requests'
default verification, unchanged. Recording (``--record``) is looked up the same way: the adapter
is a ``transcripts.tap_http.RecordingAdapter`` that taps a connection when its server has one.

Paging (ews-paging-anomalies): IndexedPageItemView pages of ``page_size`` are asked one at a time
at the offset *we* count (items received so far), never the server's IndexedPagingOffset;
IncludesLastItemInRange is not trusted — only an empty page ends the listing. Ids are deduped and
the total is cross-checked with the folder's TotalCount; when short (M365 stops at 1000), the ids
are listed again with SyncFolderItems, which has no such limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from exchangelib import (
    BASIC,
    DELEGATE,
    OAUTH2,
    Account,
    Build,
    Configuration,
    Credentials,
    OAuth2AuthorizationCodeCredentials,
    Version,
)
from exchangelib import errors as ews_errors
from exchangelib.folders import Calendar, Contacts, DeletedItems, Drafts, Inbox, JunkEmail, Notes, SentItems, Tasks
from exchangelib.items import CalendarItem, Contact, DistributionList, Message, Task
from exchangelib.protocol import BaseProtocol, FailFast

from migrator.collab import mapi
from migrator.collab.throttle import retry_delay
from migrator.errors import AuthenticationFailed, ConnectionFailed, ProtocolError, TlsFailure, UsageError
from migrator.identity import normalise_message_id
from migrator.timeline import Timeline
from migrator.urls import Endpoint
from transcripts.tap import LabelledRecorder
from transcripts.tap_http import RecordingAdapter

# EWS distinguished folders → the key used for them (profiles' special_folders / PIM_FOLDERS).
DISTINGUISHED = {
    "inbox": Inbox, "sentitems": SentItems, "drafts": Drafts, "deleteditems": DeletedItems,
    "junkemail": JunkEmail, "calendar": Calendar, "contacts": Contacts, "tasks": Tasks, "notes": Notes,
}
# Fields read per kind: enough for the conversion, not exchangelib's "all fields" list.
FIELDS = {
    # + PR_LAST_VERB_EXECUTED and PR_FLAG_STATUS (collab.mapi): \Answered, $Forwarded, \Flagged
    "mail": ["mime_content", "is_read", "datetime_received", "is_draft", "size", *mapi.READ_FIELDS],
    "contact": ["display_name", "given_name", "middle_name", "surname", "generation", "nickname", "company_name",
                "department", "job_title", "email_addresses", "phone_numbers", "physical_addresses", "birthday",
                "body", "photo", "last_modified_time"],
    "event": ["subject", "start", "end", "is_all_day", "location", "body", "uid", "organizer", "required_attendees",
              "optional_attendees", "recurrence", "modified_occurrences", "deleted_occurrences", "reminder_is_set",
              "reminder_minutes_before_start", "_start_timezone", "_end_timezone", "last_modified_time"],
    "occurrence": ["subject", "start", "end", "is_all_day", "location", "body", "original_start",
                   "last_modified_time"],
    "task": ["subject", "start_date", "due_date", "complete_date", "status", "percent_complete", "body",
             "importance", "last_modified_time"],
    "note": ["subject", "body", "datetime_created", "last_modified_time"],
    "identity": ["mime_content"],  # a destination's mail, matched by migrator.identity
}
KINDS = ("mail", "contact", "event", "task", "note")
LARGE_MAIL = 2 * 1024 * 1024  # fetched alone: big MIME breaks first (ews-mime-conversion-failed)


def item_kind(item) -> str:
    """mail | contact | event | task | note | distribution-list — from the item's type and class."""
    if isinstance(item, DistributionList):
        return "distribution-list"
    if isinstance(item, Contact):
        return "contact"
    if isinstance(item, CalendarItem):
        return "event"
    if isinstance(item, Task):
        return "task"
    if (getattr(item, "item_class", None) or "").startswith("IPM.StickyNote"):
        return "note"
    return "mail"


# TLS trust per endpoint --------------------------------------------------------------------------


class _TrustAdapter(RecordingAdapter):
    """requests adapter that applies the trust (and recording) registered for the request's (host, port)."""

    trust: dict[tuple[str, int], str | bool] = {}
    recorders: dict[tuple[str, int], LabelledRecorder] = {}
    lock = threading.Lock()

    def recorder_for(self, host: str, port: int) -> LabelledRecorder | None:
        with self.lock:
            return self.recorders.get((host, port))

    def send(self, request, **kwargs):
        parts = requests.utils.urlparse(request.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with self.lock:
            verify = self.trust.get((parts.hostname or "", port))
        if verify is not None:
            kwargs["verify"] = verify
        return super().send(request, **kwargs)


def _register_trust(endpoint: Endpoint) -> None:
    """This endpoint's trust and recorder, replacing an earlier run's for the same (host, port)."""
    url = endpoint.url
    verify: str | bool | None = None  # None: requests' default verification
    if not url.tls_verify:
        verify = False
    elif endpoint.cafile:
        verify = endpoint.trusted_ca()
    with _TrustAdapter.lock:
        if verify is None:
            _TrustAdapter.trust.pop((url.host, url.port), None)
        else:
            _TrustAdapter.trust[(url.host, url.port)] = verify
        if endpoint.recorder is None:
            _TrustAdapter.recorders.pop((url.host, url.port), None)
        else:
            _TrustAdapter.recorders[(url.host, url.port)] = endpoint.recorder
        BaseProtocol.HTTP_ADAPTER_CLS = _TrustAdapter  # see the module docstring


# Throttling --------------------------------------------------------------------------------------


class Throttle:
    """How many EWS calls may run at once; shrinks by one on every throttling reply (never below
    one). Records each wait (seconds) so tests can assert the backoff without sleeping, and puts
    it on the run's timeline (with the refusal that asked for it) when given one."""

    def __init__(self, limit: int, sleep: Callable[[float], None] = time.sleep, *, timeline: Timeline | None = None):
        self.limit = max(1, limit)
        self.sleep = sleep
        self.timeline = timeline
        self.waits: list[float] = []
        self._active = 0
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._cond:
            while self._active >= self.limit:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def back_off(self, seconds: float, cause: str = "", *, where: str = "", attempt: int = 0) -> None:
        with self._cond:
            self.limit = max(1, self.limit - 1)
            self.waits.append(seconds)
        if self.timeline is None:
            self.sleep(seconds)
        else:
            self.timeline.backoff(seconds, cause, where=where, attempt=attempt)


def _refusal(exc: BaseException) -> str:
    """The refusal as the report shows it: the exchangelib class (ErrorServerBusy ...) and its text."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# The source --------------------------------------------------------------------------------------


@dataclass
class EwsFolder:
    id: str
    path: tuple[str, ...]  # below the message folder root, e.g. ("Inbox", "Projects")
    folder_class: str
    distinguished: str | None  # "inbox", "deleteditems", "calendar" ... (DISTINGUISHED keys)
    total: int
    folder: object = field(repr=False, default=None)  # the exchangelib folder


@dataclass
class ListedItem:
    id: str
    changekey: str
    kind: str
    size: int = 0
    message_id: str | None = None  # normalised InternetMessageId, "-" without one; None when not asked


def _listed(item, message_ids: bool) -> ListedItem:
    mid = None
    if message_ids:
        value = getattr(item, "message_id", None)  # exchangelib: message:InternetMessageId
        mid = normalise_message_id(value) if value and value.strip() else "-"
    return ListedItem(item.id, item.changekey, item_kind(item), int(item.size or 0), mid)


@dataclass
class Listing:
    items: list[ListedItem]
    notes: list[str]


def connect_account(endpoint: Endpoint, connections: int) -> Account:
    """An exchangelib Account on the direct service endpoint (no autodiscover, FailFast)."""
    url = endpoint.url
    _register_trust(endpoint)
    scheme = "http" if url.scheme == "ews+http" else "https"
    secret = endpoint.password.reveal()
    if url.auth == "bearer" and scheme == "http":  # oauthlib refuses; a token in clear text would leak
        raise UsageError(f"{url.display()}: an OAuth bearer token needs ews:// (HTTPS), not ews+http://")
    if url.auth == "bearer":
        creds, auth_type = OAuth2AuthorizationCodeCredentials(
            access_token={"access_token": secret, "token_type": "Bearer"}), OAUTH2
    else:
        creds, auth_type = Credentials(url.user, secret), BASIC
    config = Configuration(
        service_endpoint=f"{scheme}://{url.host}:{url.port}/EWS/Exchange.asmx",
        credentials=creds, auth_type=auth_type, version=Version(build=Build(15, 1)),
        retry_policy=FailFast(), max_connections=max(1, connections),
    )
    address = url.user if "@" in url.user else f"{url.user}@{url.host}"
    return Account(address, config=config, autodiscover=False, access_type=DELEGATE)


class EwsConnection:
    """One EWS mailbox and the throttled way to call it; thread-safe (exchangelib pools sessions).
    Listing and reading items live here, not in ``EwsSource``: a destination reads its folders'
    mail too, to re-match copies by identity after a crash (``sinks.ews.EwsSink.identities``)."""

    role = "source"
    page_size = 100  # FindItem page

    def __init__(self, endpoint: Endpoint, *, connections: int = 2, throttle: Throttle | None = None):
        self.endpoint = endpoint
        self.throttle = throttle or Throttle(connections)
        self._authenticated = False  # a 401 after a success is throttling (ews-throttle-disguised)
        self.account = connect_account(endpoint, connections)
        mapi.register()  # before any GetItem: the mail fields name registered properties

    def where(self, what: str = "") -> str:
        return f"{self.role} {self.endpoint.url.display()}" + (f" {what}" if what else "")

    def close(self) -> None:
        try:
            self.account.protocol.close()
        except Exception:  # closing is best effort
            pass

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """``fn(*args)`` under the throttle: temporary refusals are waited out (BackOffMilliseconds
        when given), other EWS errors become typed migrator errors naming ``what``."""
        for attempt in range(1000):
            try:
                with self.throttle.slot():
                    result = fn(*args, **kwargs)
                self._authenticated = True
                return result
            except Exception as exc:
                delay = retry_delay(exc, attempt, authenticated_before=self._authenticated)
                if delay is None:
                    raise self._typed(what, exc) from exc
                self.throttle.back_off(delay, _refusal(exc), where=self.where(what), attempt=attempt + 1)
        raise AssertionError("unreachable")

    def _typed(self, what: str, exc: Exception) -> Exception:
        text = f"{self.where(what)}: {type(exc).__name__}: {exc}"
        if isinstance(exc, ews_errors.UnauthorizedError):
            return AuthenticationFailed(text)
        if isinstance(exc, requests.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return TlsFailure(text)
        if isinstance(exc, (requests.exceptions.ConnectionError, ews_errors.TransportError)) and not isinstance(
            exc, ews_errors.ResponseMessageError
        ):
            return ConnectionFailed(text)
        if isinstance(exc, ews_errors.EWSError):
            return ProtocolError(text)
        return exc

    def distinguished(self) -> dict[str, object]:
        """Distinguished id ("inbox", "calendar" ...) → the exchangelib folder, for those the server has."""
        out = {}
        for key, cls in DISTINGUISHED.items():
            try:
                out[key] = self.call(f"GetFolder {key}", self.account.root.get_default_folder, cls)
            except ProtocolError:
                continue  # the server has no such folder
        return out

    # Listing ---------------------------------------------------------------------------------

    def list_items(self, folder: EwsFolder, *, message_ids: bool = False) -> Listing:
        """Every item id of the folder with its kind and size (deduped, cross-checked); with
        ``message_ids`` also each one's InternetMessageId (a destination matching by identity)."""
        seen: dict[str, ListedItem] = {}
        notes: list[str] = []
        offset = 0
        fields = ("item_class", "size", *(("message_id",) if message_ids else ()))
        qs = folder.folder.all().only(*fields)
        while True:
            page = self.call(f"FindItem {'/'.join(folder.path)} offset {offset}",
                             lambda o=offset: list(qs[o:o + self.page_size]))
            if not page:
                break
            fresh = 0
            for item in page:
                if isinstance(item, Exception):
                    continue
                if item.id not in seen:
                    fresh += 1
                    seen[item.id] = _listed(item, message_ids)
            offset += len(page)
            if not fresh and len(seen) >= folder.total:
                break  # repeats only: the server's offsets drift past the end
        total = self._total(folder)
        if len(seen) < total:
            notes.append(f"FindItem listed {len(seen)} of {total} items: listed again with SyncFolderItems")
            for item in self._sync_ids(folder, fields, message_ids):
                seen.setdefault(item.id, item)
        if len(seen) != total:
            notes.append(f"folder says {total} items, {len(seen)} distinct ids found")
        return Listing(list(seen.values()), notes)

    def _total(self, folder: EwsFolder) -> int:
        try:
            fresh = self.call("GetFolder", lambda: folder.folder.refresh() or folder.folder)
            return int(fresh.total_count or 0)
        except ProtocolError:
            return folder.total

    def _sync_ids(self, folder: EwsFolder, fields: tuple[str, ...], message_ids: bool) -> list[ListedItem]:
        def run():
            out = []
            for change, item in folder.folder.sync_items(only_fields=list(fields)):
                if change == "create" and not isinstance(item, Exception):
                    out.append(_listed(item, message_ids))
            return out

        return self.call(f"SyncFolderItems {'/'.join(folder.path)}", run)

    # Items -----------------------------------------------------------------------------------

    def fetch(self, kind: str, items: list[ListedItem]) -> list[object]:
        """GetItem for items of one kind: the items, or per item the exception EWS answered with
        (ErrorMimeContentConversionFailed ...); a temporary per-item refusal is retried."""
        fields = FIELDS["note" if kind == "note" else kind]
        results: dict[str, object] = {}
        todo = list(items)
        for attempt in range(1000):
            got = self.call(f"GetItem {len(todo)} {kind}", lambda t=todo: list(
                self.account.fetch([(i.id, i.changekey) for i in t], only_fields=fields)))
            retry, delay, cause = [], 0.0, ""
            for li, res in zip(todo, got):
                wait = retry_delay(res, attempt, authenticated_before=True) if isinstance(res, Exception) else None
                if wait is not None:
                    retry.append(li)
                    if wait >= delay:
                        delay, cause = wait, _refusal(res)
                else:
                    results[li.id] = res
            if not retry:
                break
            self.throttle.back_off(delay, cause, where=self.where(f"GetItem {len(retry)} {kind}"), attempt=attempt + 1)
            todo = retry
        return [results[i.id] for i in items]


class EwsSource(EwsConnection):
    """Reading: the folder tree and a series' occurrences (item ids and items: ``EwsConnection``)."""

    def __init__(self, endpoint: Endpoint, *, connections: int = 2, page_size: int = 100,
                 throttle: Throttle | None = None):
        super().__init__(endpoint, connections=connections, throttle=throttle)
        self.page_size = page_size

    # Folders ---------------------------------------------------------------------------------

    def folders(self) -> list[EwsFolder]:
        """Every folder below the message folder root with its class, path and distinguished id."""
        root = self.call("GetFolder msgfolderroot", lambda: self.account.msg_folder_root)
        known = {f.id: key for key, f in self.distinguished().items()}
        found = self.call("FindFolder", lambda: list(root.walk()))
        by_id = {f.id: f for f in found}
        out = []
        for f in found:
            path: list[str] = [f.name]
            parent = by_id.get(getattr(f.parent_folder_id, "id", None))
            while parent is not None:
                path.insert(0, parent.name)
                parent = by_id.get(getattr(parent.parent_folder_id, "id", None))
            out.append(EwsFolder(f.id, tuple(path), f.folder_class or "IPF.Note", known.get(f.id),
                                 int(f.total_count or 0), f))
        return out

    def fetch_occurrences(self, ids: list[tuple[str, str]]) -> list[object]:
        """The modified occurrences of a series, by their ItemIds."""
        if not ids:
            return []
        return self.call(f"GetItem {len(ids)} occurrences",
                         lambda: list(self.account.fetch(ids, only_fields=FIELDS["occurrence"])))
