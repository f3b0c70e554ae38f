"""Generated contacts, events, tasks and notes: determinism, what they contain, where they go."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import icalendar
import pytest
import vobject
from dateutil.rrule import rrulestr

from simulators.fixtures import FixtureSpec, generate, generate_pim, populate
from simulators.fixtures.folders import plan_folders
from simulators.fixtures.pim_calendar import EVENT_SHAPES, TASK_STATUSES, offset_change
from simulators.profiles import PIM_FOLDERS, load_profile
from simulators.store import ItemKind, Store

GENERIC = load_profile("generic")
REPO = Path(__file__).resolve().parents[1]
EXCHANGE = load_profile("exchange")
SPEC = FixtureSpec(seed=3, messages=12, folders=6, contacts=8, events=12, tasks=6, notes=4, deleted_items_mixed=2)


def items(spec: FixtureSpec = SPEC, profile=EXCHANGE):
    return [g.item for g in generate_pim(spec, profile)]


def of_kind(kind: ItemKind, spec: FixtureSpec = SPEC):
    return [i for i in items(spec) if i.kind is kind and i.extra["fixture"]["case"] == "normal"]


def mail_digest(spec: FixtureSpec, profile) -> str:
    h = hashlib.sha256()
    for m in generate(spec, profile):
        h.update(repr((m.folder, sorted(m.flags), m.internaldate.isoformat(), m.case)).encode())
        h.update(m.raw)
    return h.hexdigest()


# Mail stays byte for byte what it was before PIM items existed -------------------------------

# Digests taken before the PIM generator and the profiles' PIM folder keys were added,
MAIL_DIGESTS = {  # computed with this file's mail_digest on the commit before (fdbfb6d)
    ("generic", 1): "7b6f867cb6e0c46c66ffdd00e71f1a643c67eb3ffa48fca48990447afb20d908",
    ("generic", 7): "77ca80de803493283ee97392115c7bcec2784a40f1098db19afedaa06418a603",
    ("exchange", 1): "57b319b059ac3d62d76e886cc6d254bd3349369bc5897ecd3d75b62e800bfd4c",
    ("exchange", 7): "58a6af76bab8de35d4f7e515476ff7cbf4f42c80b8d841e462c5d09035d972e6",
    ("courier", 1): "2964ded314c17a00510e6f66cf79b351e8b2ea5a99dea7d8a8e6d5a96cad3a62",
    ("courier", 7): "6e04f3f40e31048cd7b3bfc48faddc1275e5d2f965a2f1bdd0d42f45c0dfa4cc",
}
MAIL_SPECS = {
    1: FixtureSpec(),
    7: FixtureSpec(seed=7, messages=120, folders=14, bad_dates=5, no_message_id=2, duplicate_message_id=1),
}


@pytest.mark.parametrize("profile,seed", sorted(MAIL_DIGESTS))
def test_mail_bytes_unchanged_by_pim_support(profile, seed):
    assert mail_digest(MAIL_SPECS[seed], load_profile(profile)) == MAIL_DIGESTS[profile, seed]


def test_pim_items_do_not_change_the_mail():
    with_pim = MAIL_SPECS[7].model_copy(update={"contacts": 5, "events": 5, "deleted_items_mixed": 1})
    assert mail_digest(with_pim, EXCHANGE) == MAIL_DIGESTS["exchange", 7]


def test_mail_folders_ignore_the_pim_keys():
    paths = [f.path for f in plan_folders(40, EXCHANGE)]
    assert ("Calendar",) not in paths and ("Contacts",) not in paths
    assert EXCHANGE.special_use_of(("Calendar",)) is None
    assert EXCHANGE.special_use_of(("Deleted Items",)) == "\\Trash"


# Determinism ----------------------------------------------------------------------------------


def test_same_seed_same_items():
    first, again = items(), items()
    assert [(i.kind, i.item_id, i.payload) for i in first] == [(i.kind, i.item_id, i.payload) for i in again]


DIGEST_SPEC = {"seed": 9, "contacts": 6, "events": 12, "tasks": 3, "notes": 2, "deleted_items_mixed": 1}


def pim_digest(spec: FixtureSpec) -> str:
    h = hashlib.sha256()
    for g in generate_pim(spec, EXCHANGE):
        h.update(repr(g.folder).encode() + g.item.payload.encode())
    return h.hexdigest()


def test_same_bytes_in_another_process_with_other_hash_seed_and_zone():
    script = (
        "from simulators.fixtures import FixtureSpec\n"
        "from tests.test_pim_fixtures import pim_digest\n"
        f"print(pim_digest(FixtureSpec(**{DIGEST_SPEC!r})))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "Pacific/Chatham"}
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == pim_digest(FixtureSpec(**DIGEST_SPEC))


def test_other_seed_other_items():
    other = items(SPEC.model_copy(update={"seed": 4}))
    assert {i.item_id for i in other}.isdisjoint(i.item_id for i in items())


def test_uids_are_unique_and_are_the_item_ids():
    all_items = items()
    assert len({i.item_id for i in all_items}) == len(all_items)
    for item in of_kind(ItemKind.EVENT):
        uids = {str(c["uid"]) for c in icalendar.Calendar.from_ical(item.payload).walk("VEVENT")}
        assert uids == {item.item_id}


# Every kind parses and holds what it should ----------------------------------------------------


def test_contacts_are_vcard_3_with_the_awkward_fields():
    contacts = of_kind(ItemKind.CONTACT)
    cards = [vobject.readOne(c.payload) for c in contacts]
    assert all(card.version.value == "3.0" and card.uid.value == c.item_id for card, c in zip(cards, contacts))
    assert all(card.n.value.family and card.fn.value and card.adr.value.city for card in cards)
    assert all(card.contents.get("email") and card.contents.get("tel") for card in cards)
    assert any(len(card.contents["email"]) > 1 for card in cards)
    assert all(e.params.get("TYPE") for card in cards for e in card.contents["email"] + card.contents["tel"])
    assert any(hasattr(card, "bday") for card in cards) and any(hasattr(card, "photo") for card in cards)
    assert all("\n" in card.note.value and ";" in card.note.value for card in cards)  # escaped on the wire
    # German, French and Japanese names, not only ASCII ones.
    locales = {c.extra["fixture"]["locale"] for c in contacts}
    assert locales == {"en_US", "de_DE", "fr_FR", "ja_JP"}
    japanese = [card for card, c in zip(cards, contacts) if c.extra["fixture"]["locale"] == "ja_JP"]
    assert all(not card.fn.value.isascii() for card in japanese)
    assert all(card.fn.value == card.n.value.family + card.n.value.given for card in japanese)


def test_non_ascii_names_survive_serialise_and_parse():
    for item in of_kind(ItemKind.CONTACT):
        card = vobject.readOne(item.payload)
        again = vobject.readOne(card.serialize())
        assert (again.fn.value, again.n.value.family) == (card.fn.value, card.n.value.family)
        assert again.fn.value in item.payload


def test_events_cover_every_shape_with_zones_and_details():
    events = of_kind(ItemKind.EVENT)
    assert Counter(e.extra["fixture"]["shape"] for e in events) == Counter(EVENT_SHAPES * 2)
    for item in events:
        cal = icalendar.Calendar.from_ical(item.payload)
        zones = {str(tz["tzid"]) for tz in cal.walk("VTIMEZONE")}
        vevents = cal.walk("VEVENT")
        used = {v[p].params["TZID"] for v in vevents for p in ("dtstart", "dtend") if "TZID" in v[p].params}
        assert used <= zones  # every TZID used has its VTIMEZONE
        master = next(v for v in vevents if "recurrence-id" not in v)
        assert master["location"] and master["description"] and str(master["dtstamp"].dt.year) == "2024"
    all_day = [e for e in events if e.extra["fixture"]["shape"] == "all-day"]
    start = icalendar.Calendar.from_ical(all_day[0].payload).walk("VEVENT")[0]["dtstart"]
    assert start.params.get("VALUE") == "DATE" and not isinstance(start.dt, datetime)
    texts = "".join(e.payload for e in events)
    for needle in ("ATTENDEE;", "PARTSTAT=", "BEGIN:VALARM", "TRIGGER:-", "EXDATE;TZID=", "RECURRENCE-ID;TZID=",
                   "COUNT=", "UNTIL=", "FREQ=DAILY", "FREQ=WEEKLY", "FREQ=MONTHLY", "FREQ=YEARLY"):
        assert needle in texts, needle


def test_tasks_and_notes():
    tasks = [icalendar.Calendar.from_ical(t.payload).walk("VTODO") for t in of_kind(ItemKind.TASK)]
    assert all(len(t) == 1 for t in tasks)
    todos = [t[0] for t in tasks]
    assert [str(t["status"]) for t in todos] == list(TASK_STATUSES) * 2
    for todo in todos:
        percent = int(todo["percent-complete"])
        assert {"NEEDS-ACTION": percent == 0, "COMPLETED": percent == 100}.get(str(todo["status"]), 0 < percent < 100)
        assert todo["due"].dt > todo["dtstart"].dt if isinstance(todo["due"].dt, datetime) else True
        assert 1 <= int(todo["priority"]) <= 9
        assert ("completed" in todo) == (str(todo["status"]) == "COMPLETED")
    notes = [icalendar.Calendar.from_ical(n.payload).walk("VJOURNAL") for n in of_kind(ItemKind.NOTE)]
    assert all(len(n) == 1 and n[0]["summary"] and n[0]["description"] for n in notes)


# The series across a daylight-saving change ----------------------------------------------------


def expand(payload: str) -> tuple[list[datetime], dict[datetime, datetime]]:
    """(occurrence starts after EXDATEs, override start by RECURRENCE-ID), as aware datetimes."""
    vevents = icalendar.Calendar.from_ical(payload).walk("VEVENT")
    master = next(v for v in vevents if "recurrence-id" not in v)
    start = master["dtstart"].dt
    rule = rrulestr(master["rrule"].to_ical().decode(), dtstart=start)
    excluded = {d.dt for d in master["exdate"].dts}
    moved = {v["recurrence-id"].dt: v["dtstart"].dt for v in vevents if "recurrence-id" in v}
    return [o for o in rule if o not in excluded], moved


def test_weekly_series_across_dst_keeps_local_time_and_moves_the_instant():
    series = [e for e in of_kind(ItemKind.EVENT) if e.extra["fixture"]["shape"] == "weekly-dst"]
    assert series
    for item in series:
        occurrences, moved = expand(item.payload)
        zone = occurrences[0].tzinfo
        change = offset_change(zone, occurrences[0].date())
        assert len(occurrences) == 5  # six Mondays, the second cancelled
        assert all(o.timetz().replace(tzinfo=None) == time(9, 0) for o in occurrences)
        before = [o for o in occurrences if o.date() < change]
        after = [o for o in occurrences if o.date() > change]
        assert len(before) == 2 and len(after) == 3
        # Autumn: the offset drops by an hour, so 09:00 local is an hour later in UTC.
        utc_before = {o.astimezone(timezone.utc).time() for o in before}
        utc_after = {o.astimezone(timezone.utc).time() for o in after}
        assert len(utc_before) == len(utc_after) == 1
        shift = datetime.combine(change, utc_after.pop()) - datetime.combine(change, utc_before.pop())
        assert shift == timedelta(hours=1)
        # The override replaces the fifth occurrence (after the change), an hour later.
        (rid, new_start), = moved.items()
        assert rid in occurrences and rid.date() > change
        assert new_start.astimezone(timezone.utc) - rid.astimezone(timezone.utc) == timedelta(hours=1)


def test_berlin_series_instants():
    """The rule's UNTIL and the instants, spelled out for one zone."""
    zone = "Europe/Berlin"
    for item in of_kind(ItemKind.EVENT, SPEC.model_copy(update={"events": 60})):
        if item.extra["fixture"]["shape"] == "weekly-dst" and f"TZID={zone}:" in item.payload:
            occurrences, _ = expand(item.payload)
            utc = [o.astimezone(timezone.utc).strftime("%m-%d %H:%M") for o in occurrences]
            assert utc == ["10-07 07:00", "10-21 07:00", "10-28 08:00", "11-04 08:00", "11-11 08:00"]
            assert "UNTIL=20241111T080000Z" in item.payload
            return
    pytest.fail(f"no weekly-dst event in {zone} among 60 events")


# Where populate puts them -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [EXCHANGE, GENERIC], ids=["exchange", "generic"])
def test_populate_creates_pim_folders_with_their_class(profile):
    account = Store().add_account("alice", "pw")
    populate(account, SPEC, profile)
    for key, kind, count in (("calendar", ItemKind.EVENT, 12), ("contacts", ItemKind.CONTACT, 8),
                             ("tasks", ItemKind.TASK, 6), ("notes", ItemKind.NOTE, 4)):
        folder = account.folder([key.capitalize()])
        assert folder.folder_class == PIM_FOLDERS[key][1]
        assert [i.kind for i in folder.items] == [kind] * count and not folder.messages
    deleted = account.folder(["Deleted Items" if profile is EXCHANGE else "Trash"])
    assert deleted.folder_class == "IPF.Note" and deleted.special_use == "\\Trash"
    kinds = (ItemKind.CONTACT, ItemKind.EVENT, ItemKind.TASK, ItemKind.NOTE)
    assert Counter(i.kind for i in deleted.items) == {k: 2 for k in kinds}
    assert all(i.extra["fixture"]["case"] == "nonmail-in-deleted-items" for i in deleted.items)
    assert deleted.messages  # mail beside them


def test_no_pim_folders_unless_asked():
    account = Store().add_account("alice", "pw")
    populate(account, FixtureSpec(messages=5, folders=20, contacts=2), EXCHANGE)
    assert account.has_folder(["Contacts"])
    assert not any(account.has_folder([name]) for name in ("Calendar", "Tasks", "Notes"))
    assert sum(len(f.items) for f in account.folders.values()) == 2


def test_exchange_profile_names_its_pim_folders():
    assert {k: v for k, v in EXCHANGE.special_folders.items() if k in PIM_FOLDERS} == {
        "calendar": ["Calendar"], "contacts": ["Contacts"], "tasks": ["Tasks"], "notes": ["Notes"],
    }
    # Deleted Items is the trash; no profile names one folder under two keys.
    assert EXCHANGE.special_folders["trash"] == ["Deleted Items"]
    for profile in (EXCHANGE, GENERIC, load_profile("courier")):
        paths = [tuple(p) for p in profile.special_folders.values()]
        assert len(paths) == len(set(paths)), profile.name
    assert not set(PIM_FOLDERS) & set(GENERIC.special_folders)
