"""A real Radicale as the CardDAV/CalDAV peer: generated items survive PUT/GET as objects."""

from __future__ import annotations

import dataclasses

import pytest
import requests
import vobject

from scenarios.peers.radicale import RadicaleError, RadicaleServer, availability
from scenarios.pim_compare import compare, read_dav, read_store
from simulators.fixtures import FixtureSpec, populate
from simulators.profiles import load_profile
from simulators.store import Store

pytestmark = pytest.mark.peer

SPEC = FixtureSpec(seed=11, messages=0, folders=1, contacts=8, events=12, tasks=6, notes=4)
# Store folder → Radicale collection name and the component type it accepts (None: address book).
COLLECTIONS = {"Contacts": ("contacts", None), "Calendar": ("calendar", "VEVENT"),
               "Tasks": ("tasks", "VTODO"), "Notes": ("notes", "VJOURNAL")}
FOLDER_MAP = {folder: name for folder, (name, _) in COLLECTIONS.items()}


@pytest.fixture(scope="module")
def radicale():
    reason = availability()
    if reason:
        pytest.skip(reason)
    with RadicaleServer() as server:
        yield server


@pytest.fixture(scope="module")
def loaded(radicale):
    """A Radicale user holding every generated item, and the account they came from."""
    account = Store().add_account("alice", "pw")
    populate(account, SPEC, load_profile("exchange"))
    radicale.add_user("alice", "s3cret")
    for folder, (name, component) in COLLECTIONS.items():
        if component is None:
            radicale.create_addressbook("alice", name)
        else:
            radicale.create_calendar("alice", name, (component,))
        for item in account.folder([folder]).items:
            suffix = ".vcf" if component is None else ".ics"
            response = radicale.put("alice", name, item.item_id + suffix, item.payload)
            assert response.status_code == 201, (folder, item.item_id, response.status_code, response.text)
    return account


def test_put_get_compares_equal_as_objects(radicale, loaded):
    report = compare(read_store(loaded), read_dav(radicale.url("alice"), "s3cret"), folder_map=FOLDER_MAP)
    assert report.ok, report.summary()
    assert report.dest_counts == {("contact", "contacts"): 8, ("event", "calendar"): 12,
                                  ("task", "tasks"): 6, ("note", "notes"): 4}


def test_radicale_reserialises_but_names_survive(radicale, loaded):
    contacts = loaded.folder(["Contacts"]).items
    japanese = next(c for c in contacts if c.extra["fixture"]["locale"] == "ja_JP")
    text = radicale.get("alice", "contacts", japanese.item_id + ".vcf")
    assert vobject.readOne(text).fn.value == vobject.readOne(japanese.payload).fn.value
    assert not text.isascii()
    events = loaded.folder(["Calendar"]).items
    stored = [radicale.get("alice", "calendar", e.item_id + ".ics") for e in events]
    assert any(s.replace("\r\n", "\n") != e.payload.replace("\r\n", "\n") for s, e in zip(stored, events))


def test_duplicate_uid_in_one_collection_is_409(radicale, loaded):
    contact = loaded.folder(["Contacts"]).items[0]
    response = radicale.put("alice", "contacts", "another-name.vcf", contact.payload)
    assert response.status_code == 409


def test_collections_list_kinds_and_components(radicale, loaded):
    found = {c.name: (c.kind, c.components) for c in radicale.collections("alice")}
    assert found == {"contacts": ("addressbook", ()), "calendar": ("calendar", ("VEVENT",)),
                     "tasks": ("calendar", ("VTODO",)), "notes": ("calendar", ("VJOURNAL",))}


def test_url_and_authentication(radicale, loaded):
    assert radicale.url("alice") == f"dav+http://alice@127.0.0.1:{radicale.port}/"
    wrong = requests.request("PROPFIND", radicale.collection_url("alice", "contacts"),
                             auth=("alice", "wrong"), headers={"Depth": "0"}, timeout=10)
    assert wrong.status_code == 401
    radicale.add_user("bob", "other")  # owner_only: bob cannot read alice's collections
    with radicale.session("bob") as bob:
        assert bob.get(radicale.collection_url("alice", "contacts"), timeout=10).status_code in (403, 404)


def test_stop_removes_process_and_storage():
    if availability():
        pytest.skip(availability())
    server = RadicaleServer()
    server.start()
    directory, pid = server.directory, server.pid
    assert server.running and directory.exists() and pid
    server.stop()
    assert not server.running and not directory.exists()
    with pytest.raises(RadicaleError, match="not started"):
        server.directory
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{server.port}/", timeout=2)


def test_items_lists_what_a_collection_holds(radicale, loaded):
    held = radicale.items("alice", "tasks")
    expected = {t.item_id + ".ics" for t in loaded.folder(["Tasks"]).items}
    assert set(held) == expected and all("BEGIN:VTODO" in text for text in held.values())


def test_load_account_splits_mixed_folders_by_kind(radicale):
    account = Store().add_account("carol", "pw")
    spec = FixtureSpec(seed=2, messages=3, folders=4, contacts=2, deleted_items_mixed=1)
    populate(account, spec, load_profile("exchange"))
    radicale.add_user("carol", "pw2")
    names = radicale.load_account("carol", account)
    assert names == {("Contacts", "contact"): "contacts", ("Deleted Items", "contact"): "deleted-items-contact",
                     ("Deleted Items", "event"): "deleted-items-event", ("Deleted Items", "task"): "deleted-items-task",
                     ("Deleted Items", "note"): "deleted-items-note"}
    # compare() maps folders, not (folder, kind): put the store's folder names back on the records.
    back = {collection: folder for (folder, _), collection in names.items()}
    dest = [dataclasses.replace(r, folder=back[r.folder]) for r in read_dav(radicale.url("carol"), "pw2")]
    report = compare(read_store(account), dest)
    assert report.ok, report.summary()
    assert report.dest_counts[("note", "Deleted Items")] == 1
