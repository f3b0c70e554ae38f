"""exchangelib (a real EWS client) against the EWS simulator over loopback HTTP.

No autodiscover: a direct service endpoint with Basic auth and Exchange 2016, as a migrator
would configure it. Helpers here (world, PIM samples) are shared with test_ews_quirks.py.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timezone

import pytest

from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, FailFast, Q, Version
from exchangelib.folders import Calendar, Contacts, Notes, Tasks
from exchangelib.items import CalendarItem, Contact, Message, Task
from exchangelib.version import EXCHANGE_2016

from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import ItemKind, PimItem, Store

CONTACT = """BEGIN:VCARD
VERSION:3.0
UID:contact-1
N:Lovelace;Ada;King;;
FN:Ada Lovelace
ORG:Analytical Engines Ltd
TITLE:Programmer
EMAIL;TYPE=INTERNET,WORK:ada@engines.test
EMAIL;TYPE=INTERNET,HOME:ada@home.test
TEL;TYPE=WORK,VOICE:+44 20 7946 0001
TEL;TYPE=CELL:+44 7700 900001
ADR;TYPE=WORK:;;12 St James's Square;London;;SW1Y 4JH;United Kingdom
BDAY:1815-12-10
NOTE:Met at the Babbage soirée
END:VCARD
"""

EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//quirkmail tests//EN
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:event-weekly
DTSTAMP:20240101T000000Z
DTSTART;TZID=Europe/Berlin:20240108T090000
DTEND;TZID=Europe/Berlin:20240108T093000
RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10
EXDATE;TZID=Europe/Berlin:20240117T090000
SUMMARY:Stand-up
LOCATION:Room 1
DESCRIPTION:Daily-ish sync
ORGANIZER;CN=Ada:mailto:ada@engines.test
ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@engines.test
ATTENDEE;CN=Eve;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE:mailto:eve@engines.test
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT10M
END:VALARM
END:VEVENT
BEGIN:VEVENT
UID:event-weekly
DTSTAMP:20240101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20240110T090000
DTSTART;TZID=Europe/Berlin:20240110T110000
DTEND;TZID=Europe/Berlin:20240110T113000
SUMMARY:Stand-up (moved)
END:VEVENT
END:VCALENDAR
"""

ALLDAY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//quirkmail tests//EN
BEGIN:VEVENT
UID:event-allday
DTSTAMP:20240101T000000Z
DTSTART;VALUE=DATE:20240301
DTEND;VALUE=DATE:20240302
SUMMARY:Holiday
END:VEVENT
END:VCALENDAR
"""

TASK = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//quirkmail tests//EN
BEGIN:VTODO
UID:task-1
DTSTAMP:20240101T000000Z
DTSTART:20240105T080000Z
DUE:20240110T170000Z
SUMMARY:File the report
STATUS:IN-PROCESS
PERCENT-COMPLETE:40
END:VTODO
END:VCALENDAR
"""

NOTE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//quirkmail tests//EN
BEGIN:VJOURNAL
UID:note-1
DTSTAMP:20240101T000000Z
DTSTART:20240102T100000Z
SUMMARY:Door code
DESCRIPTION:4711 then #
END:VJOURNAL
END:VCALENDAR
"""


def mail(i: int, subject: str | None = None) -> bytes:
    return (
        f"From: Bob <bob@engines.test>\r\nTo: alice@engines.test\r\nSubject: {subject or f'message {i}'}\r\n"
        f"Date: Mon, 1 Jan 2024 10:00:00 +0100\r\nMessage-ID: <m{i}@engines.test>\r\n\r\nbody {i}\r\n"
    ).encode()


def make_store(messages: int = 3) -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    for i in range(messages):
        account.append(("INBOX",), mail(i), flags={"\\Seen"} if i % 2 else set())
    for path, cls in ((("Calendar",), "IPF.Appointment"), (("Contacts",), "IPF.Contact"),
                      (("Tasks",), "IPF.Task"), (("Notes",), "IPF.StickyNote")):
        account.create_folder(path, folder_class=cls)
    account.add_item(("Contacts",), PimItem(ItemKind.CONTACT, "contact-1", CONTACT))
    account.add_item(("Calendar",), PimItem(ItemKind.EVENT, "event-weekly", EVENT))
    account.add_item(("Calendar",), PimItem(ItemKind.EVENT, "event-allday", ALLDAY))
    account.add_item(("Tasks",), PimItem(ItemKind.TASK, "task-1", TASK))
    account.add_item(("Notes",), PimItem(ItemKind.NOTE, "note-1", NOTE))
    return store


@contextlib.contextmanager
def ews_account(store: Store, quirks: list[str] = (), retry_policy=None, profile: str = "exchange"):
    prof = load_profile(profile).with_quirks([QuirkSpec.parse(q) for q in quirks])
    with SimulatorWorld(store, prof) as world:
        handle = world.start_ews()
        config = Configuration(
            service_endpoint=f"http://{handle.host}:{handle.port}/EWS/Exchange.asmx",
            credentials=Credentials("alice", "secret"),
            auth_type=BASIC,
            version=Version(build=EXCHANGE_2016),
            retry_policy=retry_policy or FailFast(),
            max_connections=2,
        )
        account = Account("alice@engines.test", config=config, autodiscover=False, access_type=DELEGATE)
        try:
            yield account
        finally:
            account.protocol.close()


def test_folder_tree_lists_store_and_distinguished_folders():
    store = make_store()
    store.account("alice").create_folder(("Projects", "2024"))
    with ews_account(store) as account:
        names = {f.name: f for f in account.msg_folder_root.walk()}
        assert {"Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Calendar", "Contacts",
                "Tasks", "Notes", "Projects", "2024"} <= set(names)
        assert names["2024"].parent.name == "Projects"
        assert isinstance(names["Calendar"], Calendar) and isinstance(names["Contacts"], Contacts)
        assert isinstance(names["Tasks"], Tasks) and isinstance(names["Notes"], Notes)
        assert account.inbox.total_count == 3 and account.inbox.unread_count == 2
        assert account.calendar.folder_class == "IPF.Appointment"


def test_pages_through_2000_messages():
    store = make_store(0)
    inbox = store.account("alice").folder(("INBOX",))
    for i in range(2000):
        store.account("alice").append(("INBOX",), mail(i))
    assert len(inbox.messages) == 2000
    with ews_account(store) as account:
        qs = account.inbox.all().only("subject")
        qs.page_size = 300
        subjects = [m.subject for m in qs]
    assert subjects == [f"message {i}" for i in range(2000)]


def test_mime_content_byte_for_byte():
    store = make_store(0)
    raw = b"From: x@y.test\nSubject: bare LF and 8-bit \xe9\n\nline\x00with NUL\r\n\xff\n"
    store.account("alice").append(("INBOX",), raw)
    with ews_account(store) as account:
        (msg,) = list(account.inbox.all().only("mime_content"))
        assert msg.mime_content == raw


def test_reads_contact():
    with ews_account(make_store()) as account:
        (c,) = list(account.contacts.all())
    assert isinstance(c, Contact)
    assert (c.given_name, c.surname, c.display_name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert [e.email for e in c.email_addresses] == ["ada@engines.test", "ada@home.test"]
    assert {p.label: p.phone_number for p in c.phone_numbers} == {
        "BusinessPhone": "+44 20 7946 0001", "MobilePhone": "+44 7700 900001"}
    (addr,) = c.physical_addresses
    assert (addr.label, addr.street, addr.city, addr.zipcode) == ("Business", "12 St James's Square", "London", "SW1Y 4JH")
    assert c.birthday == date(1815, 12, 10)
    assert c.company_name == "Analytical Engines Ltd" and c.job_title == "Programmer"


def test_reads_recurring_event_with_modified_and_deleted_occurrences():
    with ews_account(make_store()) as account:
        items = {i.uid: i for i in account.calendar.all()}
        ev = items["event-weekly"]
        assert isinstance(ev, CalendarItem) and ev.type == "RecurringMaster"
        assert ev.subject == "Stand-up" and ev.location == "Room 1"
        assert ev.start == datetime(2024, 1, 8, 8, 0, tzinfo=timezone.utc)
        assert ev.end == datetime(2024, 1, 8, 8, 30, tzinfo=timezone.utc)
        assert ev._start_timezone.ms_id == "W. Europe Standard Time"
        pattern = ev.recurrence.pattern
        assert type(pattern).__name__ == "WeeklyPattern" and [d for d in pattern.weekdays] == [1, 3]
        assert ev.recurrence.boundary.number == 10
        assert ev.reminder_is_set and ev.reminder_minutes_before_start == 10
        assert [a.mailbox.email_address for a in ev.required_attendees] == ["bob@engines.test"]
        assert [a.response_type for a in ev.optional_attendees] == ["Tentative"]
        assert [d.start for d in ev.deleted_occurrences] == [datetime(2024, 1, 17, 8, 0, tzinfo=timezone.utc)]
        (occ,) = ev.modified_occurrences
        assert occ.original_start == datetime(2024, 1, 10, 8, 0, tzinfo=timezone.utc)
        assert occ.start == datetime(2024, 1, 10, 10, 0, tzinfo=timezone.utc)
        (exception,) = account.fetch(ids=[(occ.id, occ.changekey)])
        assert exception.subject == "Stand-up (moved)" and exception.type == "Exception"
        allday = items["event-allday"]
        assert allday.is_all_day and allday.type == "Single"


def test_reads_task_and_note():
    with ews_account(make_store()) as account:
        (task,) = list(account.tasks.all())
        (note,) = list(account.root.get_default_folder(Notes).all())
    assert isinstance(task, Task)
    assert (task.subject, task.status, task.percent_complete) == ("File the report", "InProgress", 40)
    assert task.due_date == date(2024, 1, 10) or task.due_date == datetime(2024, 1, 10, 17, tzinfo=timezone.utc)
    assert isinstance(note, Message) and note.item_class == "IPM.StickyNote"
    assert (note.subject, note.body) == ("Door code", "4711 then #")


def test_creates_mail_contact_event_task():
    store = make_store(0)
    raw = b"From: a@b.test\r\nSubject: imported\r\n\r\nhello\r\n"
    with ews_account(store) as account:
        m = Message(account=account, folder=account.inbox, mime_content=raw, is_read=True)
        m.save()
        Contact(account=account, folder=account.contacts, given_name="Grace", surname="Hopper", display_name="Grace Hopper",
                email_addresses=[]).save()
        CalendarItem(account=account, folder=account.calendar, subject="Launch",
                     start=datetime(2024, 5, 1, 12, tzinfo=timezone.utc),
                     end=datetime(2024, 5, 1, 13, tzinfo=timezone.utc)).save()
        Task(account=account, folder=account.tasks, subject="Ship it").save()
        notes = account.root.get_default_folder(Notes)
        Message(account=account, folder=notes, item_class="IPM.StickyNote", subject="Wi-Fi", body="hunter2").save()
        (back,) = list(account.inbox.all().only("mime_content", "is_read"))
        assert back.mime_content == raw and back.is_read
        assert {c.display_name for c in account.contacts.all()} == {"Grace Hopper", "Ada Lovelace"}
        launch = next(i for i in account.calendar.all() if i.subject == "Launch")
        assert launch.start == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
        assert {t.subject for t in account.tasks.all()} == {"Ship it", "File the report"}
        assert {(n.subject, n.body) for n in notes.all()} == {("Wi-Fi", "hunter2"), ("Door code", "4711 then #")}
        m.delete()
        assert account.inbox.all().count() == 0
    folder = store.account("alice").folder(("Contacts",))
    card = next(i for i in folder.items if "Hopper" in i.payload)
    assert "N:Hopper;Grace" in card.payload and card.payload.startswith("BEGIN:VCARD")


def test_start_ews_urls_and_https_with_the_world_certificate():
    import requests

    with SimulatorWorld(make_store(1), load_profile("exchange")) as world:
        plain, tls = world.start_ews(), world.start_ews(tls=True)
        assert plain.url("alice") == f"ews+http://alice@127.0.0.1:{plain.port}"
        assert tls.url("alice") == f"ews://alice@127.0.0.1:{tls.port}"
        body = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                b'<m:GetFolder xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
                b'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:FolderShape>'
                b'<t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/>'
                b'</m:FolderIds></m:GetFolder></s:Body></s:Envelope>')
        r = requests.post(f"https://127.0.0.1:{tls.port}/EWS/Exchange.asmx", data=body, auth=("alice", "secret"),
                          verify=str(world.cafile), timeout=10)
        assert r.status_code == 200 and b"<t:TotalCount>1</t:TotalCount>" in r.content
        url = f"http://127.0.0.1:{plain.port}/EWS/Exchange.asmx"
        with requests.Session() as http:  # one keep-alive connection: a fault must not break it
            bad = http.post(url, data=b"<s:Envelope", auth=("alice", "secret"), timeout=10)
            good = http.post(url, data=body, auth=("alice", "secret"), timeout=10)
        assert bad.status_code == 500 and b"<faultcode" in bad.content and b"a:ErrorSchemaValidation" in bad.content
        assert good.status_code == 200 and b"<t:TotalCount>1</t:TotalCount>" in good.content


def test_reads_every_generated_pim_item():
    """The fixtures' generated contacts, events (with overrides), tasks and notes all convert."""
    import icalendar
    import vobject
    from exchangelib.folders import Notes as NotesFolder

    from simulators.fixtures.generator import populate
    from simulators.fixtures.spec import FixtureSpec

    store = Store()
    account = store.add_account("alice", "secret")
    populate(account, FixtureSpec(messages=5, contacts=25, events=30, tasks=10, notes=8), load_profile("exchange"))
    by_kind = {k: [i for f in account.folders.values() for i in f.items if i.kind is k] for k in ItemKind}
    overrides = sum(len([e for e in icalendar.Calendar.from_ical(i.payload).walk("VEVENT") if "RECURRENCE-ID" in e])
                    for i in by_kind[ItemKind.EVENT])
    with ews_account(store) as ews:
        contacts = list(ews.contacts.all())
        events = list(ews.calendar.all())
        tasks = list(ews.tasks.all())
        notes = list(ews.root.get_default_folder(NotesFolder).all())
        occurrences = [o for e in events for o in (e.modified_occurrences or [])]
        exceptions = list(ews.fetch(ids=[(o.id, o.changekey) for o in occurrences]))
    assert sorted(c.display_name for c in contacts) == sorted(
        vobject.readOne(i.payload).fn.value for i in by_kind[ItemKind.CONTACT])
    assert sorted(e.uid for e in events) == sorted(i.item_id for i in by_kind[ItemKind.EVENT])
    assert (len(tasks), len(notes)) == (10, 8)
    assert overrides > 0 and len(occurrences) == overrides
    assert all(isinstance(x, CalendarItem) and x.type == "Exception" for x in exceptions)


def test_sort_order_by_received_and_subject():
    from datetime import timedelta

    store = make_store(0)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i, subject in enumerate(["b", "C", "a"]):
        store.account("alice").append(("INBOX",), mail(i, subject), internaldate=base + timedelta(days=i))
    with ews_account(store) as account:
        newest_first = [m.subject for m in account.inbox.all().order_by("-datetime_received").only("subject")]
        by_subject = [m.subject for m in account.inbox.all().order_by("subject").only("subject")]
    assert (newest_first, by_subject) == (["a", "C", "b"], ["a", "b", "C"])


def test_restrictions_on_received_subject_and_read():
    from datetime import timedelta

    store = make_store(0)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    for i in range(6):
        store.account("alice").append(("INBOX",), mail(i, f"Invoice {i}" if i % 2 else f"note {i}"),
                                      internaldate=base + timedelta(days=i), flags={"\\Seen"} if i < 3 else set())
    with ews_account(store) as account:
        since = [m.subject for m in account.inbox.filter(datetime_received__gt=base + timedelta(days=3)).only("subject")]
        invoices = [m.subject for m in account.inbox.filter(subject__icontains="invoice").only("subject")]
        unread_notes = [m.subject for m in account.inbox.filter(~Q(subject__startswith="Invoice"), is_read=False)
                        .only("subject")]
    assert since == ["note 4", "Invoice 5"]
    assert invoices == ["Invoice 1", "Invoice 3", "Invoice 5"]
    assert unread_notes == ["note 4"]


def test_calendar_view_expands_the_series():
    from exchangelib import EWSDateTime, EWSTimeZone

    utc = EWSTimeZone("UTC")
    with ews_account(make_store()) as account:
        view = list(account.calendar.view(start=EWSDateTime(2024, 1, 8, tzinfo=utc),
                                          end=EWSDateTime(2024, 1, 23, tzinfo=utc)))
        assert [(v.type, v.subject, v.start) for v in view] == [
            ("Occurrence", "Stand-up", datetime(2024, 1, 8, 8, tzinfo=timezone.utc)),
            ("Exception", "Stand-up (moved)", datetime(2024, 1, 10, 10, tzinfo=timezone.utc)),
            ("Occurrence", "Stand-up", datetime(2024, 1, 15, 8, tzinfo=timezone.utc)),
            # 17 January is an EXDATE
            ("Occurrence", "Stand-up", datetime(2024, 1, 22, 8, tzinfo=timezone.utc)),
        ]
        (again,) = account.fetch(ids=[(view[2].id, view[2].changekey)])
        assert (again.type, again.start, again.end) == (
            "Occurrence", datetime(2024, 1, 15, 8, tzinfo=timezone.utc), datetime(2024, 1, 15, 8, 30, tzinfo=timezone.utc))
        march = list(account.calendar.view(start=EWSDateTime(2024, 3, 1, tzinfo=utc),
                                           end=EWSDateTime(2024, 3, 2, tzinfo=utc)))
        assert [(v.subject, v.is_all_day) for v in march] == [("Holiday", True)]
        # The COUNT=10 series (with one EXDATE) is over by the end of February.
        assert len(list(account.calendar.view(start=EWSDateTime(2024, 1, 1, tzinfo=utc),
                                              end=EWSDateTime(2024, 12, 31, tzinfo=utc)))) == 9 + 1


def test_mail_flags_as_mapi_extended_properties_both_ways():
    from exchangelib import ExtendedProperty

    class FlagStatus(ExtendedProperty):
        property_tag = 0x1090
        property_type = "Integer"

    class LastVerb(ExtendedProperty):
        property_tag = 0x1081
        property_type = "Integer"

    class MessageFlags(ExtendedProperty):
        property_tag = 0x0E07
        property_type = "Integer"

    store = make_store(0)
    for flags in ({"\\Flagged", "\\Seen"}, {"\\Answered"}, {"\\Answered", "$Forwarded"}, set()):
        store.account("alice").append(("INBOX",), mail(len(flags)), flags=flags)
    registered = {"flag_status": FlagStatus, "last_verb": LastVerb, "message_flags": MessageFlags}
    for name, cls in registered.items():
        Message.register(name, cls)
    try:
        with ews_account(store) as account:
            got = [(m.flag_status, m.last_verb, m.message_flags)
                   for m in account.inbox.all().only("flag_status", "last_verb", "message_flags")]
            Message(account=account, folder=account.inbox, mime_content=mail(9), flag_status=2, last_verb=102,
                    message_flags=1).save()
    finally:
        for name in registered:
            Message.deregister(name)
    assert got == [(2, None, 1), (None, 102, 0), (None, 104, 0), (None, None, 0)]
    assert store.account("alice").folder(("INBOX",)).messages[-1].flags == {"\\Flagged", "\\Answered", "\\Seen"}


def test_sync_items_reports_creates_read_flag_changes_and_deletes():
    store = make_store(4)
    inbox = store.account("alice").folder(("INBOX",))
    with ews_account(store) as account:
        first = [kind for kind, _ in account.inbox.sync_items(only_fields=["subject"], max_changes_returned=3)]
        assert first == ["create"] * 4
        state = account.inbox.item_sync_state
        inbox.messages[0].flags.add("\\Seen")
        inbox.messages[2].flags.add("\\Flagged")
        inbox.messages[3].flags.add("\\Deleted")
        store.account("alice").expunge(("INBOX",))
        changes = list(account.inbox.sync_items(sync_state=state, only_fields=["subject"]))
    kinds = [kind for kind, _ in changes]
    assert sorted(kinds) == ["delete", "read_flag_change", "update"]
    (read_change,) = [value for kind, value in changes if kind == "read_flag_change"]
    assert read_change[1] is True


def test_update_item_changes_read_state_and_refuses_other_fields():
    from exchangelib.errors import ErrorInvalidRequest

    store = make_store(1)
    item = store.account("alice").folder(("INBOX",)).messages[0]
    with ews_account(store) as account:
        (msg,) = list(account.inbox.all().only("subject", "is_read"))
        assert msg.is_read is False
        msg.is_read = True
        msg.save(update_fields=["is_read"])
        assert "\\Seen" in item.flags
        msg.subject = "rewritten"
        with pytest.raises(ErrorInvalidRequest, match="item:Subject"):
            msg.save(update_fields=["subject"])
    assert b"Subject: message 0" in item.raw
