"""A batch moves an EWS account's contacts, calendars, tasks and notes too when its line gives a
PIM destination (the CSV's pim, pim_user, pim_secret columns): two accounts into a real Radicale
(CardDAV/CalDAV), one into another EWS mailbox, each through the single-account PIM path.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from migrator.batch.accounts import parse_batch
from migrator.batch.runner import BatchOptions, run_batch
from migrator.engine import MigrationOptions
from scenarios import pim_compare
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store
from tests.test_migrator_ews import (  # noqa: F401 (radicale: a fixture)
    FOLDER_MAP, KIND_COLLECTION, MIXED, PASSWORD, comparable, mail, radicale, source_records,
)

pytestmark = pytest.mark.peer

SPEC = FixtureSpec(seed=21, messages=8, folders=3, contacts=3, events=3, tasks=2, notes=2, deleted_items_mixed=1)
KIND_FOLDER = {"contact": "Contacts", "event": "Calendar", "task": "Tasks", "note": "Notes"}


def _moved_home(records):
    """Deleted Items' non-mail items land in their kind's collection (folder)."""
    return [dataclasses.replace(r, folder=KIND_COLLECTION[r.kind]) if r.folder == "Deleted Items" else r
            for r in records]


@pytest.mark.slow
def test_ews_accounts_move_pim_to_radicale_and_ews(radicale, tmp_path, monkeypatch):
    profile = load_profile("exchange").with_quirks([MIXED])
    src_store, dst_store = Store(), Store()
    sources = {}
    for i, user in enumerate(("alice", "dora", "carl")):
        sources[user] = src_store.add_account(user, PASSWORD)
        populate(sources[user], SPEC.model_copy(update={"seed": SPEC.seed + i}), profile)
    imap_dest = {u: dst_store.add_account(u, PASSWORD) for u in ("bob", "emil")}
    ews_dest = dst_store.add_account("fred", PASSWORD)
    dav_users = {u: f"b{abs(hash(tmp_path)) % 10**6}{u}" for u in ("bob", "emil")}
    for dav_user in dav_users.values():
        radicale.add_user(dav_user, PASSWORD)
    monkeypatch.setenv("QM_BATCH_PW", PASSWORD)
    with SimulatorWorld(src_store, profile) as sw, SimulatorWorld(dst_store, load_profile("exchange")) as dw:
        ews, imap, ews_to = sw.start_ews(), dw.start_imap(), dw.start_ews()
        lines = ["source,source_secret,dest,dest_secret,pim,pim_secret,id"]
        for src_user, dst_user in (("alice", "bob"), ("dora", "emil")):
            lines.append(f"{ews.url(src_user)},env:QM_BATCH_PW,{imap.url(dst_user)},env:QM_BATCH_PW,"
                         f"{radicale.url(dav_users[dst_user])},env:QM_BATCH_PW,{src_user}")
        lines.append(f"{ews.url('carl')},env:QM_BATCH_PW,{ews_to.url('fred')},env:QM_BATCH_PW,"
                     f"{ews_to.url('fred')},env:QM_BATCH_PW,carl")
        batch = parse_batch("\n".join(lines) + "\n")
        report = run_batch(batch, BatchOptions(outdir=tmp_path / "out", dest_cafile=dw.cafile,
                                               migration=MigrationOptions(connections=2)))
    by_id = {a.id: a for a in report.accounts}
    assert {i: a.outcome for i, a in by_id.items()} == {"alice": "ok", "dora": "ok", "carl": "ok"}, \
        [a.error for a in report.accounts]
    assert by_id["alice"].pim_destination == batch.accounts[0].pim.display()
    assert by_id["alice"].pim_destination.startswith("dav+http://")
    per_account = SPEC.messages + SPEC.contacts + SPEC.events + SPEC.tasks + SPEC.notes + 4 * SPEC.deleted_items_mixed
    for src_user, dst_user in (("alice", "bob"), ("dora", "emil")):
        assert mail(imap_dest[dst_user]) == mail(sources[src_user])
        dav = pim_compare.read_dav(radicale.url(dav_users[dst_user]), PASSWORD)
        result = pim_compare.compare(map(comparable, _moved_home(source_records(sources[src_user]))),
                                     map(comparable, dav), folder_map=FOLDER_MAP)
        assert result.ok, result.summary()
    # carl → fred, EWS to EWS: mail and every other kind in its kind's folder
    assert mail(ews_dest) == mail(sources["carl"])
    got = sorted((r.kind, r.folder) for r in pim_compare.read_store(ews_dest))
    assert got == sorted((r.kind, KIND_FOLDER[r.kind]) for r in pim_compare.read_store(sources["carl"]))
    assert [a.copied for a in report.accounts] == [per_account] * 3  # mail and every PIM item, each once


def test_a_pim_column_added_later_runs_the_finished_account_again(radicale, tmp_path, monkeypatch):
    """First run without the pim column: mail only, PIM reported unmigratable (exit 1, finished).
    The column added, the same batch runs that account again: PIM copied, no mail twice."""
    profile = load_profile("exchange")
    src_store, dst_store = Store(), Store()
    source = src_store.add_account("alice", PASSWORD)
    populate(source, SPEC, profile)
    dest = dst_store.add_account("bob", PASSWORD)
    dav_user = f"l{abs(hash(tmp_path)) % 10**6}bob"
    radicale.add_user(dav_user, PASSWORD)
    monkeypatch.setenv("QM_BATCH_PW", PASSWORD)
    with SimulatorWorld(src_store, profile) as sw, SimulatorWorld(dst_store, load_profile("generic")) as dw:
        ews, imap = sw.start_ews(), dw.start_imap()
        line = f"{ews.url('alice')},env:QM_BATCH_PW,{imap.url('bob')},env:QM_BATCH_PW"
        options = BatchOptions(outdir=tmp_path / "out", dest_cafile=dw.cafile, migration=MigrationOptions(connections=2))
        first = run_batch(parse_batch(f"source,source_secret,dest,dest_secret\n{line}\n"), options)
        second = run_batch(parse_batch(f"source,source_secret,dest,dest_secret,pim,pim_secret\n{line},"
                                       f"{radicale.url(dav_user)},env:QM_BATCH_PW\n"), options)
    [a1], [a2] = first.accounts, second.accounts
    assert (a1.outcome, a1.copied) == ("items-skipped", SPEC.messages)  # PIM unmigratable: no destination
    assert (a2.outcome, a2.reused, a2.already_present) == ("ok", False, SPEC.messages)
    assert a2.copied == SPEC.contacts + SPEC.events + SPEC.tasks + SPEC.notes
    assert mail(dest) == mail(source)
    assert len(pim_compare.read_dav(radicale.url(dav_user), PASSWORD)) == a2.copied
    events = [json.loads(x) for x in (tmp_path / "out" / "accounts" / f"{a1.id}.jsonl").read_text().splitlines()]
    not_migrated = {e["kind"] for e in events if e["event"] == "not-migrated"}  # its field "kind" is no clash
    assert not_migrated == {"contact", "event", "task", "note"}
