"""The engine with the IMAP simulator as the source (and, for size limits, as the destination)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from migrator.engine import MigrationOptions, migrate
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.fixtures import FixtureSpec, populate
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import Account, Store
from tests.test_migrator_support import PASSWORD, dovecot, endpoint, snapshot, user  # noqa: F401 (fixture)

SPEC = FixtureSpec(seed=11, messages=45, folders=6, no_message_id=3, duplicate_message_id=2, bad_dates=3)


def sim_endpoint(world: SimulatorWorld, handle, name: str) -> Endpoint:
    return Endpoint(ServerURL.parse(handle.url(name)), Secret(PASSWORD), cafile=world.cafile)


def normalised(account: Account) -> dict[str, list]:
    """Folder ("/"-joined parts) → sorted (bytes with CRLF, flags, instant); empty folders left out."""
    out = {}
    for f in account.folders.values():
        if f.messages:
            out["/".join(f.path)] = sorted(
                (crlf(m.raw), frozenset(m.flags - {"\\Recent"}), m.internaldate.astimezone(timezone.utc))
                for m in f.messages
            )
    return out


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.peer
@pytest.mark.parametrize("profile_name", ["generic", "courier"])
def test_simulator_to_dovecot(dovecot, tmp_path, profile_name):
    profile = load_profile(profile_name)
    account = Store().add_account("alice", PASSWORD)
    populate(account, SPEC, profile)
    dst = user(dovecot)
    with SimulatorWorld(account._store, profile) as world:
        handle = world.start_imap()
        src = sim_endpoint(world, handle, "alice")
        opts = MigrationOptions(state_path=tmp_path / "s.sqlite", batch_size=10)
        report = migrate(src, endpoint(dovecot, dst), opts)
        total = sum(len(f.messages) for f in account.folders.values())
        assert (report.copied, report.failed, report.skipped_count) == (total, 0, 0)
        # "." + "INBOX." prefix on Courier → "/" at Dovecot: the same paths either way.
        got = {k: [(crlf(r), f, d) for r, f, d in v] for k, v in snapshot(dovecot, dst).items() if v}
        assert got == normalised(account)
        assert migrate(src, endpoint(dovecot, dst), opts).copied == 0


@pytest.mark.peer
def test_refused_message_is_reported_and_the_rest_copied(dovecot, tmp_path):
    profile = load_profile("generic")
    account = Store().add_account("bob", PASSWORD)
    when = datetime(2022, 2, 2, tzinfo=timezone.utc)
    for n in range(6):
        raw = b"" if n == 3 else f"Subject: m{n}\r\nMessage-ID: <r{n}@x>\r\n\r\nbody {n}\r\n".encode()
        account.append(("INBOX",), raw, internaldate=when)  # Dovecot refuses zero-byte messages
    dst = user(dovecot)
    with SimulatorWorld(account._store, profile) as world:
        handle = world.start_imap()
        report = migrate(sim_endpoint(world, handle, "bob"), endpoint(dovecot, dst),
                         MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert report.copied == 5 and report.exit_code == 1
    [skip] = report.skipped
    assert (skip.folder, skip.uid, skip.reason) == ("INBOX", 4, "refused")
    assert "zero byte" in skip.detail
    assert len(snapshot(dovecot, dst)["INBOX"]) == 5


def test_appendlimit_skips_too_large_up_front_or_when_refused(tmp_path):
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    when = datetime(2022, 2, 2, tzinfo=timezone.utc)
    for n, size in enumerate((100, 9000, 200, 20000)):
        src.append(("INBOX",), f"Subject: s{n}\r\n\r\n".encode() + b"x" * size, internaldate=when)
    for advertise in (True, False):  # advertised: never sent; unadvertised: NO [TOOBIG] when sent
        profile = load_profile("generic").with_quirks(
            [QuirkSpec(name="appendlimit", params={"bytes": 5000, "advertise": advertise})]
        )
        store.account("dst").folders[("INBOX",)].messages.clear()
        with SimulatorWorld(store, profile) as world:
            handle = world.start_imap()
            report = migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                             MigrationOptions(state_path=tmp_path / f"{advertise}.sqlite"))
        assert report.copied == 2
        assert [(s.uid, s.reason) for s in report.skipped] == [(2, "too-large"), (4, "too-large")]
        assert all(("TOOBIG" in s.detail) != advertise for s in report.skipped)
        assert len(store.account("dst").folder(("INBOX",)).messages) == 2


def test_flags_the_destination_refuses_are_dropped_and_reported(tmp_path):
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    when = datetime(2022, 2, 2, tzinfo=timezone.utc)
    src.append(("INBOX",), b"Subject: a\r\n\r\na\r\n", flags={"\\Seen", "$Forwarded"}, internaldate=when)
    src.append(("INBOX",), b"Subject: b\r\n\r\nb\r\n", flags={"\\Flagged"}, internaldate=when)
    generic = load_profile("generic")
    no_keywords = generic.model_copy(
        update={"imap": generic.imap.model_copy(update={"permanent_flags": ["\\Seen", "\\Flagged", "\\Deleted"]})}
    )
    with SimulatorWorld(store, no_keywords) as world:
        handle = world.start_imap()
        report = migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                         MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert report.copied == 2 and report.exit_code == 0
    assert [(d.folder, d.uid, d.flags) for d in report.dropped_flags] == [("INBOX", 1, ["$Forwarded"])]
    copies = store.account("dst").folder(("INBOX",)).messages
    assert [m.flags - {"\\Recent"} for m in copies] == [{"\\Seen"}, {"\\Flagged"}]
    assert all(m.internaldate == when for m in copies)


def _two_accounts(n: int) -> Store:
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    for i in range(n):
        src.append(("INBOX",), f"Subject: q{i}\r\nMessage-ID: <q{i}@x>\r\n\r\n".encode() + b"z" * 1000,
                   internaldate=datetime(2022, 3, 3, tzinfo=timezone.utc))
    return store


def _sim_to_sim(store: Store, quirk: QuirkSpec | None, tmp_path, **options):
    profile = load_profile("generic").with_quirks([quirk] if quirk else [])
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        return migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                       MigrationOptions(state_path=tmp_path / "s.sqlite", **options))


@pytest.mark.parametrize(
    "quirk",
    [
        QuirkSpec(name="yahoo-rate-limit", params={"after": 1, "times": 2}),  # NO [LIMIT] on UID FETCH
        QuirkSpec(name="m365-throttled-backoff", params={"after": 6, "times": 3, "backoff_ms": 20}),
    ],
)
def test_throttling_is_waited_out(tmp_path, quirk):
    store = _two_accounts(5)
    report = _sim_to_sim(store, quirk, tmp_path, batch_size=2)
    assert (report.copied, report.failed, report.skipped_count, report.exit_code) == (5, 0, 0, 0)
    assert len(store.account("dst").folder(("INBOX",)).messages) == 5


def test_refused_fetch_is_isolated_to_the_failing_message(tmp_path, monkeypatch):
    from migrator.errors import ProtocolError
    from migrator.sources.imap import ImapSource

    real_fetch = ImapSource.fetch

    def fetch(self, folder, uids):  # the server cannot produce UID 3 (a broken message)
        if 3 in uids:
            raise ProtocolError(f"{self.where(folder)}: NO [SERVERBUG]-less failure for UID 3")
        return real_fetch(self, folder, uids)

    monkeypatch.setattr(ImapSource, "fetch", fetch)
    store = _two_accounts(5)
    report = _sim_to_sim(store, None, tmp_path, batch_size=5)
    assert report.copied == 4 and report.exit_code == 1
    [error] = report.errors
    assert (error.folder, error.uid, error.error) == ("INBOX", 3, "ProtocolError")
    assert len(store.account("dst").folder(("INBOX",)).messages) == 4


def test_over_quota_stops_the_run_and_a_rerun_resumes(tmp_path):
    store = _two_accounts(6)
    report = _sim_to_sim(store, QuirkSpec(name="quota-exceeded", params={"bytes": 4500}), tmp_path, batch_size=2)
    assert report.aborted and "over quota" in report.aborted and report.exit_code == 5
    stored = len(store.account("dst").folder(("INBOX",)).messages)
    assert report.copied == stored < 6
    report = _sim_to_sim(store, QuirkSpec(name="quota-exceeded", params={"bytes": 10**6}), tmp_path)
    assert (report.copied, report.already_present, report.exit_code) == (6 - stored, stored, 0)
    assert len(store.account("dst").folder(("INBOX",)).messages) == 6


def test_tls_starttls_verification_and_connection_test(tmp_path):
    from migrator.engine import test_connection as probe
    from migrator.errors import ExitCode, TlsFailure

    store = _two_accounts(1)
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap()
        report = probe(sim_endpoint(world, handle, "src"), role="source")  # STARTTLS advertised → used
        assert (report.tls, report.inbox_messages, report.delimiter) == ("starttls", 1, "/")
        assert "IMAP4REV1" in report.capabilities
        untrusted = Endpoint(ServerURL.parse(handle.url("src")), Secret(PASSWORD))  # no cafile
        with pytest.raises(TlsFailure, match="certificate") as info:
            probe(untrusted, role="source")
        assert info.value.exit_code == ExitCode.CONNECTION and str(handle.port) in str(info.value)
        unverified = Endpoint(ServerURL.parse(handle.url("src") + "?tls_verify=no"), Secret(PASSWORD))
        assert probe(unverified, role="source").tls == "starttls"
        plain = Endpoint(ServerURL.parse(handle.url("src") + "?starttls=no"), Secret(PASSWORD))
        assert probe(plain, role="source").tls == "none"


def test_implicit_tls_copy(tmp_path):
    store = _two_accounts(3)
    with SimulatorWorld(store, load_profile("generic")) as world:
        handle = world.start_imap(implicit_tls=True)
        assert handle.url("src").startswith("imaps://")
        report = migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                         MigrationOptions(state_path=tmp_path / "s.sqlite"))
    assert report.copied == 3 and report.exit_code == 0
    assert [m.raw for m in store.account("dst").folder(("INBOX",)).messages] == [
        m.raw for m in store.account("src").folder(("INBOX",)).messages
    ]


def test_untrustworthy_internaldate_falls_back_and_is_reported(tmp_path):
    store = _two_accounts(0)
    raw = (b"Received: from mx by example.org; Tue, 4 Jan 2022 10:00:00 +0100\r\n"
           b"Date: Mon, 3 Jan 2022 10:00:00 +0000\r\nSubject: from the future\r\n\r\nx\r\n")
    store.account("src").append(("INBOX",), raw, internaldate=datetime(2099, 1, 1, tzinfo=timezone.utc))
    report = _sim_to_sim(store, None, tmp_path)
    assert report.copied == 1
    [fallback] = report.date_fallbacks
    assert (fallback.folder, fallback.uid, fallback.used) == ("INBOX", 1, "received")
    assert "INTERNALDATE in the future" in fallback.detail
    [copy] = store.account("dst").folder(("INBOX",)).messages
    assert copy.internaldate == datetime(2022, 1, 4, 9, 0, tzinfo=timezone.utc)


def test_connection_limit_means_fewer_workers_not_failure(tmp_path):
    store = _two_accounts(0)
    for n in range(4):  # four folders, so four workers are wanted
        store.account("src").create_folder((f"F{n}",))
        for i in range(5):
            store.account("src").append((f"F{n}",), f"Subject: {n}-{i}\r\n\r\nx\r\n".encode(),
                                        internaldate=datetime(2022, 3, 3, tzinfo=timezone.utc))
    # Per account: the control connection + 2 workers' connections fit, the rest are refused.
    quirk = QuirkSpec(name="gmail-too-many-connections", params={"limit": 3})
    report = _sim_to_sim(store, quirk, tmp_path, connections=4, batch_size=2)
    assert (report.copied, report.failed, report.exit_code) == (20, 0, 0)
    assert any("Too many simultaneous connections" in n for n in report.notes)


@pytest.mark.parametrize(
    "quirk, text",
    [
        ("app-password-required", "application-specific password, not the account password"),
        ("oauth-only", "the server offers OAuth"),
        ("authenticated-but-not-connected", "authenticated but not connected"),
    ],
)
def test_login_refusals_are_authentication_failures_with_a_hint(tmp_path, quirk, text):
    from migrator.errors import AuthenticationFailed

    store = _two_accounts(1)
    profile = load_profile("generic").with_quirks([QuirkSpec(name=quirk)])
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        wrong = Endpoint(ServerURL.parse(handle.url("src")), Secret("not-the-app-password"), cafile=world.cafile)
        source = wrong if quirk == "app-password-required" else sim_endpoint(world, handle, "src")
        with pytest.raises(AuthenticationFailed, match=text) as info:
            migrate(source, sim_endpoint(world, handle, "dst"), MigrationOptions(state_path=tmp_path / "s"))
    assert "not-the-app-password" not in str(info.value) and PASSWORD not in str(info.value)


def test_exchange_destination_case_collisions_and_reserved_names_are_renamed(tmp_path):
    store = Store()
    src = store.add_account("src", PASSWORD)
    dst = store.add_account("dst", PASSWORD)
    when = datetime(2022, 3, 3, tzinfo=timezone.utc)
    for path in (("Projects",), ("projects",), ("Files",)):  # distinct folders on the source
        src.create_folder(path)
        src.append(path, f"Subject: in {path[0]}\r\n\r\nx\r\n".encode(), internaldate=when)
    with SimulatorWorld(store, load_profile("exchange")) as world:
        handle = world.start_imap()
        report = migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                         MigrationOptions(state_path=tmp_path / "s.sqlite", connections=1))
    assert report.copied == 3 and report.exit_code == 0
    where = {f.source: f.destination for f in report.folders}
    assert where["Files"] == "Files (2)"
    assert {where["Projects"], where["projects"]} == {"Projects", "projects (2)"} or \
        {where["Projects"], where["projects"]} == {"Projects (2)", "projects"}
    for source, destination in where.items():
        if source != "INBOX":  # every folder kept apart: one message each
            assert len(dst.folder((destination,)).messages) == 1
    assert any("ignores case" in n for f in report.folders for n in f.notes)


def test_gmail_folder_name_restrictions_are_renamed(tmp_path):
    store = _two_accounts(0)
    src = store.account("src")
    for path in (("Work", " spaced  out "), ("a^b",)):
        src.create_folder(path)
        src.append(path, b"Subject: x\r\n\r\nx\r\n", internaldate=datetime(2022, 3, 3, tzinfo=timezone.utc))
    report = _sim_to_sim(store, QuirkSpec(name="folder-name-restrictions"), tmp_path)
    assert report.copied == 2 and report.exit_code == 0
    where = {f.source: f.destination for f in report.folders}
    assert where["Work/ spaced  out "] == "Work/spaced out" and where["a^b"] == "a_b"
    assert store.account("dst").folder(("Work", "spaced out")).messages


def _with_calendar() -> Store:
    from simulators.store import ItemKind, PimItem

    store = _two_accounts(2)
    store.account("src").create_folder(("Calendar",), folder_class="IPF.Appointment")
    for n in range(4):
        store.account("src").add_item(("Calendar",), PimItem(ItemKind.EVENT, f"ev{n}", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
    return store


def test_exchange_nonmail_folders_are_skipped_as_folders_and_never_created(tmp_path):
    store = _with_calendar()
    report = _sim_to_sim(store, QuirkSpec(name="exchange-nonmail-folders-over-imap"), tmp_path)
    assert report.copied == 2 and report.skipped == [] and report.exit_code == 0
    (skipped,) = [s for s in report.skipped_folders if s.folder == "Calendar"]
    assert "no message bodies (4 items listed" in skipped.reason
    assert "Calendar" not in [f.source for f in report.folders]
    assert not store.account("dst").has_folder(("Calendar",))  # no empty folder left behind


def test_without_the_nonmail_mitigation_each_item_is_skipped_and_an_empty_folder_made(tmp_path):
    store = _with_calendar()
    report = _sim_to_sim(store, QuirkSpec(name="exchange-nonmail-folders-over-imap"), tmp_path,
                         disable=["nonmail-folder-skip"])
    assert report.copied == 2
    assert [(s.folder, s.reason) for s in report.skipped] == [("Calendar", "no-body")] * 4
    assert store.account("dst").folder(("Calendar",)).messages == []  # never the made-up message


def test_bye_after_errors_reconnects_and_blames_only_the_refused(tmp_path):
    store = _two_accounts(0)
    when = datetime(2022, 3, 3, tzinfo=timezone.utc)
    sizes = [100, 9000, 100, 9000, 100, 9000, 100]  # the 9000-byte ones are refused
    for n, size in enumerate(sizes):
        store.account("src").append(("INBOX",), f"Subject: b{n}\r\nMessage-ID: <b{n}@x>\r\n\r\n".encode() + b"y" * size,
                                    internaldate=when)
    profile = load_profile("generic").with_quirks([
        QuirkSpec(name="appendlimit", params={"bytes": 5000, "advertise": False}),
        QuirkSpec(name="exchange-bye-after-errors", params={"errors": 3}),
    ])
    with SimulatorWorld(store, profile) as world:
        handle = world.start_imap()
        report = migrate(sim_endpoint(world, handle, "src"), sim_endpoint(world, handle, "dst"),
                         MigrationOptions(state_path=tmp_path / "s.sqlite", batch_size=10))
    assert report.aborted is None
    assert (report.copied, report.exit_code) == (4, 1)
    assert sorted((s.uid, s.reason) for s in report.skipped) == [(2, "too-large"), (4, "too-large"), (6, "too-large")]
    copies = store.account("dst").folder(("INBOX",)).messages
    assert sorted(m.raw[:12] for m in copies) == [b"Subject: b0\r", b"Subject: b2\r", b"Subject: b4\r", b"Subject: b6\r"]


@pytest.mark.parametrize(
    "quirk",
    ["id-required", "gmail-throttled-suffix:after=3,times=5", "search-unreliable", "exchange-reply-text"],
)
def test_quirks_that_must_not_disturb_a_migration(tmp_path, quirk):
    store = _two_accounts(6)
    report = _sim_to_sim(store, QuirkSpec.parse(quirk), tmp_path, batch_size=4)
    assert (report.copied, report.failed, report.skipped_count, report.exit_code) == (6, 0, 0, 0)
    assert len(store.account("dst").folder(("INBOX",)).messages) == 6
