"""The EWS flow end to end: the EWS simulator → the IMAP simulator (mail) + a real Radicale (PIM).

PIM items are compared as parsed objects (``scenarios.pim_compare``): instants with their zones,
RRULE, EXDATE, overrides, contact fields, task dates. Mail is compared as bytes, flags and
INTERNALDATE instants in the destination store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from datetime import timezone

import pytest

from migrator.collab.convert import stable_uid
from migrator.collab.flow import migrate_ews
from migrator.engine import MigrationOptions, migrate
from migrator.engine import test_connection as probe_connection
from migrator.errors import AuthenticationFailed, UsageError
from migrator.urls import Endpoint, Secret, ServerURL
from scenarios import pim_compare
from scenarios.peers.radicale import RadicaleServer
from simulators.ews import ids
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Account, ItemKind, PimItem, Store

PASSWORD = "ews-secret"
SPEC = FixtureSpec(seed=5, messages=24, folders=5, contacts=6, events=6, tasks=4, notes=3, deleted_items_mixed=2)
MIXED = QuirkSpec(name="nonmail-in-deleted-items")
# Where each source PIM folder lands (collection names are the folder names, slugified).
FOLDER_MAP = {"Contacts": "contacts", "Calendar": "calendar", "Tasks": "tasks", "Notes": "notes"}
KIND_COLLECTION = {"contact": "contacts", "event": "calendar", "task": "tasks", "note": "notes"}

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def radicale():
    reason = RadicaleServer.availability()
    if reason:
        pytest.skip(reason)
    with RadicaleServer() as server:
        yield server


@dataclasses.dataclass
class Setup:
    source: Account
    dest: Account
    src: Endpoint
    dst: Endpoint
    pim: Endpoint
    radicale: RadicaleServer
    dav_user: str


@pytest.fixture
def make_world(radicale, request):
    """``make_world(*quirks, spec=SPEC)``: source (exchange profile + nonmail-in-deleted-items +
    ``quirks``), destination IMAP (generic profile), a Radicale user of its own."""
    with contextlib.ExitStack() as stack:

        def make(*quirks: QuirkSpec, spec: FixtureSpec = SPEC) -> Setup:
            profile = load_profile("exchange").with_quirks([MIXED, *quirks])
            source = Store().add_account("alice", PASSWORD)
            populate(source, spec, profile)
            dest = Store().add_account("bob", PASSWORD)
            dav_user = f"u{abs(hash(request.node.nodeid)) % 10**8}"  # one Radicale, a user per test
            radicale.add_user(dav_user, PASSWORD)
            src_world = stack.enter_context(SimulatorWorld(source._store, profile))
            dst_world = stack.enter_context(SimulatorWorld(dest._store, load_profile("generic")))
            ews, imap = src_world.start_ews(), dst_world.start_imap()
            return Setup(
                source, dest,
                Endpoint(ServerURL.parse(ews.url("alice")), Secret(PASSWORD)),
                Endpoint(ServerURL.parse(imap.url("bob")), Secret(PASSWORD), cafile=dst_world.cafile),
                Endpoint(ServerURL.parse(radicale.url(dav_user)), Secret(PASSWORD)),
                radicale, dav_user,
            )

        yield make


@pytest.fixture
def world(make_world) -> Setup:
    return make_world()


def options(tmp_path, **kw) -> MigrationOptions:
    return MigrationOptions(state_path=tmp_path / "state.sqlite", connections=2, **kw)


def source_records(account: Account) -> list[pim_compare.PimRecord]:
    """The store's PIM items with the UIDs the migration gives them: events keep theirs; contacts,
    tasks and notes have none in EWS, so theirs derive from the ItemId (``stable_uid``)."""
    out = []
    for rec in pim_compare.read_store(account):
        if rec.kind != "event":
            path = tuple(rec.folder.split("/"))
            item_id = ids.item_id(account.username, path, f"p:{rec.uid}")
            rec = dataclasses.replace(rec, uid=stable_uid(item_id))
        out.append(rec)
    return out


def comparable(rec: pim_compare.PimRecord) -> pim_compare.PimRecord:
    """Leave out what EWS (or its simulator) cannot carry, so the rest is compared exactly:
    - task start/due: EWS has no zone for them and exchangelib reads them as dates (UTC date);
    - task priority: the EWS simulator does not render Importance;
    - contact photo: the EWS simulator does not render contacts:Photo."""
    fields = dict(rec.fields)
    if rec.kind == "task":
        fields.pop("priority", None)
        for name in ("start", "due"):
            w = fields.get(name)
            if w is not None and w.tzid is not None:
                fields[name] = pim_compare.When(w.value.astimezone(timezone.utc).date(), None)
    if rec.kind == "contact":
        fields.pop("photo", None)
    return dataclasses.replace(rec, fields=fields)


def dav_records(setup: Setup) -> list[pim_compare.PimRecord]:
    return pim_compare.read_dav(setup.radicale.url(setup.dav_user), PASSWORD)


CARRIED = {"\\Seen", "\\Draft", "\\Answered", "\\Flagged", "$Forwarded"}  # the flags EWS has a property for


def carried(flags) -> frozenset[str]:
    """The flags EWS carries; it keeps only the last verb, so answered + forwarded is forwarded."""
    out = set(flags) & CARRIED
    return frozenset(out - {"\\Answered"} if "$Forwarded" in out else out)


def mail(account: Account, *, skip: tuple[str, ...] = ()) -> dict[str, list]:
    """Folder → sorted (bytes with CRLF, flags we carry, instant)."""
    out = {}
    for f in account.folders.values():
        name = "/".join(f.path)
        if f.messages and name not in skip:
            out[name] = sorted(
                (m.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                 carried(m.flags), m.internaldate.astimezone(timezone.utc))
                for m in f.messages
            )
    return out


def expected_mail(setup: Setup) -> dict[str, list]:
    """The source's mail: the empty generic destination has no special folders to map onto."""
    return mail(setup.source)


def test_full_collaboration_migration(world, tmp_path):
    report = migrate(world.src, world.dst, options(tmp_path), pim_dest=world.pim)
    assert (report.failed, report.aborted, report.unmigratable) == (0, None, [])
    kinds = {k.kind: (k.source, k.copied) for k in report.kinds}
    spec = SPEC
    mixed = spec.deleted_items_mixed
    assert kinds == {
        "mail": (spec.messages, spec.messages),
        "contact": (spec.contacts + mixed, spec.contacts + mixed),
        "event": (spec.events + mixed, spec.events + mixed),
        "task": (spec.tasks + mixed, spec.tasks + mixed),
        "note": (spec.notes + mixed, spec.notes + mixed),
    }
    # Deleted Items' non-mail items went to their kind's collection.
    folder_map = dict(FOLDER_MAP)
    src = source_records(world.source)
    deleted = [r for r in src if r.folder == "Deleted Items"]
    assert {r.kind for r in deleted} == {"contact", "event", "task", "note"}
    src = [dataclasses.replace(r, folder=KIND_COLLECTION[r.kind]) if r.folder == "Deleted Items" else r for r in src]
    result = pim_compare.compare(map(comparable, src), map(comparable, dav_records(world)), folder_map=folder_map)
    assert result.ok, result.summary()
    assert mail(world.dest) == expected_mail(world)
    by_folder = {f.source: {k.kind: k.source for k in f.kinds} for f in report.folders}
    assert by_folder["Deleted Items"] == {"mail": by_folder["Deleted Items"]["mail"], "contact": mixed,
                                          "event": mixed, "task": mixed, "note": mixed}

    again = migrate(world.src, world.dst, options(tmp_path), pim_dest=world.pim)
    assert (again.copied, again.failed) == (0, 0)
    assert again.already_present == report.copied
    assert mail(world.dest) == expected_mail(world)
    assert len(dav_records(world)) == len(src)


def test_rerun_without_checkpoint_puts_nothing_twice(world, tmp_path):
    first = migrate(world.src, world.dst, options(tmp_path, items=["contacts", "calendars"]), pim_dest=world.pim)
    assert {k.kind for k in first.kinds if k.copied} == {"contact", "event"}
    assert first.unmigratable == [] and first.exit_code == 0  # left out on request: a note, not a failure
    notes = {n for f in first.folders for n in f.notes}
    assert {f"{SPEC.tasks} task item(s) left out (--items contacts,calendars)",
            f"{SPEC.deleted_items_mixed} note item(s) left out (--items contacts,calendars)"} <= notes
    fresh = tmp_path / "other"
    again = migrate(world.src, world.dst, options(fresh, items=["contacts", "calendars"]), pim_dest=world.pim)
    assert again.copied == 0  # If-None-Match: the server itself refused duplicates (412)
    assert again.already_present == first.copied
    counts = {c.name: 0 for c in world.radicale.collections(world.dav_user)}
    for r in dav_records(world):
        counts[r.folder] += 1
    assert sum(counts.values()) == first.copied


def test_deleted_items_mail_only_reports_other_kinds(world, tmp_path):
    report = migrate(world.src, world.dst, options(tmp_path, deleted_items="mail-only"), pim_dest=world.pim)
    n = SPEC.deleted_items_mixed
    unmig = {(u.kind, u.folder): u.count for u in report.unmigratable}
    assert unmig == {(k, "Deleted Items"): n for k in ("contact", "event", "task", "note")}
    assert all("only mail" in u.reason for u in report.unmigratable)
    assert report.exit_code == 1
    assert mail(world.dest)["Deleted Items"] == expected_mail(world)["Deleted Items"]  # the mail is there, nothing else
    got = {(r.kind, r.folder) for r in dav_records(world)}
    uids = {r.uid for r in dav_records(world)}
    deleted_uids = {r.uid for r in source_records(world.source) if r.folder == "Deleted Items"}
    assert not uids & deleted_uids and got  # the kind folders migrated, Deleted Items' PIM items not


def test_server_busy_backoff_obeyed(make_world, tmp_path):
    world = make_world(QuirkSpec(name="ews-server-busy", params={"after": 4, "times": 2, "backoff_ms": 1500}))
    waits: list[float] = []
    report = migrate_ews(world.src, world.dst, options(tmp_path), pim_dest=world.pim, sleep=waits.append)
    assert waits == [1.5, 1.5]  # BackOffMilliseconds, not a guess
    assert (report.failed, report.aborted) == (0, None)
    assert sum(k.copied for k in report.kinds) == sum(k.source for k in report.kinds)
    assert any("throttled 2 time(s)" in n and "parallelism down to 1" in n for n in report.notes)


def test_disguised_throttling_retried(make_world, tmp_path):
    kinds = "401|503|302|ErrorTooManyObjectsOpened"
    world = make_world(QuirkSpec(name="ews-throttle-disguised", params={"after": 3, "times": 4, "kinds": kinds}))
    waits: list[float] = []
    report = migrate_ews(world.src, world.dst, options(tmp_path), pim_dest=world.pim, sleep=waits.append)
    assert len(waits) == 4 and all(w > 0 for w in waits)
    assert (report.failed, report.aborted) == (0, None)
    assert sum(k.copied for k in report.kinds) == sum(k.source for k in report.kinds)


def test_first_401_is_a_wrong_password(make_world, tmp_path):
    world = make_world(QuirkSpec(name="ews-throttle-disguised", params={"after": 0, "times": 1, "kinds": "401"}))
    with pytest.raises(AuthenticationFailed):
        migrate_ews(world.src, world.dst, options(tmp_path), pim_dest=world.pim, sleep=lambda s: None)


def test_mime_conversion_failure_reported_per_item(make_world, tmp_path):
    world = make_world(QuirkSpec(name="ews-mime-conversion-failed", params={"every": 4}))
    report = migrate(world.src, world.dst, options(tmp_path, items=["mail"]), pim_dest=world.pim)
    failing = sum(1 for f in world.source.folders.values() for m in f.messages if m.uid % 4 == 0)
    assert failing and report.failed == failing
    assert {e.error for e in report.errors} == {"ErrorMimeContentConversionFailed"}
    assert all(e.item_id and ids.parse_item_id(e.item_id).key.startswith("m:") for e in report.errors)
    assert sum(len(f.messages) for f in world.dest.folders.values()) == SPEC.messages - failing


@pytest.mark.parametrize("mode", ["stop", "drift", "contradict"])
def test_paging_anomalies_lose_nothing(make_world, tmp_path, mode):
    params = {"mode": mode, "limit": 60, "delta": 7}  # pages of 100: "stop" cuts the first one short
    world = make_world(QuirkSpec(name="ews-paging-anomalies", params=params), spec=FixtureSpec(seed=8, messages=130, folders=1))
    report = migrate(world.src, world.dst, options(tmp_path, items=["mail"]))
    assert (report.copied, report.failed) == (130, 0)
    assert mail(world.dest) == expected_mail(world)


def test_tls_with_the_simulator_ca_and_cli(make_world, tmp_path, monkeypatch, capsys):
    """ews:// (HTTPS, verified against --from-cafile) through the CLI; the summary has per-kind lines."""
    import argparse

    from migrator.cli import add_migrate_arguments, run_migrate

    world = make_world()
    profile = load_profile("exchange").with_quirks([MIXED])
    with SimulatorWorld(world.source._store, profile) as tls_world:
        handle = tls_world.start_ews(tls=True)
        url = handle.url("alice")
        assert url.startswith("ews://")
        monkeypatch.setenv("QM_PW", PASSWORD)
        monkeypatch.setattr("sys.stdin.isatty", lambda: False)
        parser = argparse.ArgumentParser()
        add_migrate_arguments(parser)
        base = ["--from", url, "--from-password-env", "QM_PW", "--to", str(world.dst.url), "--to-password-env", "QM_PW",
                "--to-cafile", str(world.dst.cafile), "--pim-to", world.radicale.url(world.dav_user),
                "--pim-to-password-env", "QM_PW", "--items", "mail,contacts", "--state", str(tmp_path / "s.sqlite")]
        untrusted = parser.parse_args(base)
        assert run_migrate(untrusted) == 3  # the simulator's self-signed certificate is not trusted
        assert "certificate" in capsys.readouterr().err.lower()
        probe = parser.parse_args([*base, "--from-cafile", str(tls_world.cafile), "--test-connection"])
        assert run_migrate(probe) == 0
        capsys.readouterr()
        trusted = Endpoint(ServerURL.parse(url), Secret(PASSWORD), cafile=tls_world.cafile)
        seen = probe_connection(trusted, role="source")
        assert (seen.tls, seen.inbox_messages) == ("implicit", len(world.source.folder(("INBOX",)).messages))
        assert {"IPF.Note", "IPF.Contact", "IPF.Appointment", "IPF.Task", "IPF.StickyNote"} <= set(seen.capabilities)
        assert probe_connection(world.pim, role="pim").capabilities == []  # a fresh Radicale user: no collections
        args = parser.parse_args([*base, "--from-cafile", str(tls_world.cafile), "--report", str(tmp_path / "r.json")])
        assert run_migrate(args) == 0  # events, tasks, notes left out on request
    out = capsys.readouterr().out
    assert "contact: 8 found, 8 copied" in out and f"mail: {SPEC.messages} found, {SPEC.messages} copied" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["unmigratable"] == [] and report["items"] == ["mail", "contacts"]
    assert {k["kind"]: k["copied"] for k in report["kinds"]} == {"mail": SPEC.messages, "contact": 8,
                                                                     "event": 0, "task": 0, "note": 0}


def test_ews_to_ews_destination(make_world, tmp_path):
    """Everything into another EWS mailbox (CreateItem): mail as received messages with their
    instants and read state, contacts/events/tasks/notes in their kind's folders."""
    world = make_world()
    profile = load_profile("exchange")
    dest = Store().add_account("carol", PASSWORD)
    with SimulatorWorld(dest._store, profile) as dst_world:
        ews = Endpoint(ServerURL.parse(dst_world.start_ews().url("carol")), Secret(PASSWORD))
        report = migrate(world.src, ews, options(tmp_path), pim_dest=ews)
        assert (report.failed, report.aborted) == (0, None), report.errors[:3]
        again = migrate(world.src, ews, options(tmp_path), pim_dest=ews)
    assert (again.copied, again.already_present) == (0, report.copied)
    src_mail = mail(world.source)
    got_mail = mail(dest)
    assert got_mail == src_mail
    counts = lambda acc: sorted((r.kind, r.folder) for r in pim_compare.read_store(acc))  # noqa: E731
    expected = sorted((r.kind, {"contact": "Contacts", "event": "Calendar", "task": "Tasks", "note": "Notes"}[r.kind])
                      for r in pim_compare.read_store(world.source))
    assert counts(dest) == expected
    # Series keep their cancelled (EXDATE) and moved (RECURRENCE-ID) occurrences, instants and all.
    series = lambda acc: {r.uid: (r.fields["exdates"], r.fields["overrides"])  # noqa: E731
                          for r in pim_compare.read_store(acc) if r.kind == "event" and r.fields["rrule"]}
    assert any(exdates for exdates, _ in series(world.source).values())
    assert any(overrides for _, overrides in series(world.source).values())
    assert series(dest) == series(world.source)


def test_malformed_source_item_reported_with_its_item_id(make_world, tmp_path):
    world = make_world()
    world.source.add_item(("Contacts",), PimItem(ItemKind.CONTACT, "broken-1", "this is not a vCard"))
    world.source.add_item(("Calendar",), PimItem(ItemKind.EVENT, "broken-2", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
    report = migrate(world.src, world.dst, options(tmp_path, items=["contacts", "calendars"]), pim_dest=world.pim)
    failed = {ids.parse_item_id(e.item_id).key for e in report.errors}
    assert failed == {"p:broken-1", "p:broken-2"}, report.errors
    copied = {k.kind: k.copied for k in report.kinds}
    n = SPEC.deleted_items_mixed
    assert (copied["contact"], copied["event"]) == (SPEC.contacts + n, SPEC.events + n)  # the rest went on


def test_oauth_bearer_token(make_world, tmp_path):
    """?auth=bearer: the secret is an OAuth access token, sent as ``Authorization: Bearer`` (HTTPS only)."""
    world = make_world()
    with pytest.raises(UsageError, match="HTTPS"):
        migrate(Endpoint(ServerURL.parse(f"{world.src.url}?auth=bearer"), Secret(PASSWORD)), world.dst, options(tmp_path))
    with SimulatorWorld(world.source._store, load_profile("exchange")) as tls_world:
        url = ServerURL.parse(tls_world.start_ews(tls=True).url("alice") + "?auth=bearer")
        report = migrate(Endpoint(url, Secret(PASSWORD), cafile=tls_world.cafile), world.dst,
                         options(tmp_path, items=["mail"]))
        assert (report.copied, report.failed) == (SPEC.messages, 0)
        with pytest.raises(AuthenticationFailed):
            migrate(Endpoint(url, Secret("not-the-token"), cafile=tls_world.cafile), world.dst,
                    options(tmp_path / "w", items=["mail"]))
