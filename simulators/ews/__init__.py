"""The EWS-like simulator: SOAP 1.1 over HTTP at ``/EWS/Exchange.asmx``.

Layout (pure core, thin adapter, as the IMAP front):

- ``engine``: ``EwsService(store, profile).handle(HttpRequest) -> HttpResponse`` — path, method,
  authentication (Basic with the account's password; ``Bearer <token>`` where the account's
  password is the valid token), SOAP faults, dispatch.
- ``operations``: GetFolder, FindFolder (Shallow/Deep), SyncFolderHierarchy, CreateFolder,
  FindItem (IndexedPageItemView, CalendarView, Restriction, SortOrder on DateTimeReceived/Size/Subject),
  GetItem (IdOnly / Default / AllProperties + AdditionalProperties, IncludeMimeContent), SyncFolderItems,
  CreateItem (mail from MimeContent or properties; Contact, CalendarItem, Task, notes),
  UpdateItem (mail read state and flags; an occurrence's times, subject, location, body,
  attendees and reminder), DeleteItem (HardDelete / SoftDelete / MoveToDeletedItems; an
  occurrence becomes an EXDATE). GetItem, UpdateItem and DeleteItem take t:OccurrenceItemId.
- ``folders`` (virtual root / msgfolderroot, distinguished ids), ``items`` (mail rendering,
  shapes), ``calendar_view``, ``occurrences`` (InstanceIndex, EXDATE / RECURRENCE-ID edits),
  ``restriction``, ``pim`` + ``recurrence`` + ``timezones`` (vCard / iCalendar ↔ EWS XML),
  ``ids`` (stable base64 ids), ``paging``, ``sync`` (SyncState blobs), ``soap`` (envelopes, faults).
- ``server``: ``EwsSite`` (twisted.web); ``SimulatorWorld.start_ews(port=0, *, tls=False)``.
- ``quirks``: nonmail-in-deleted-items, ews-server-busy, ews-throttle-disguised,
  ews-paging-anomalies, ews-mime-conversion-failed.

Not simulated (answered with ErrorInvalidRequest naming what is missing, never silently):
restrictions beyond simulators.ews.restriction, other SortOrder fields, sending
(MessageDisposition other than SaveOnly for mail), UpdateItem of other fields (mail content,
series masters, contacts, tasks, notes). MoveItem, CopyItem, DeleteFolder and attachment
operations are not offered (a SOAP fault, ErrorInvalidRequest, names the operation). Calendar
items are shown in UTC with the zone's Windows id in StartTimeZone/EndTimeZone; floating times
count as UTC.
"""

from simulators.ews.engine import EWS_PATH, EwsService, HttpRequest, HttpResponse

__all__ = ["EWS_PATH", "EwsService", "HttpRequest", "HttpResponse"]
