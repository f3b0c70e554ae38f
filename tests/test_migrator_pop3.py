"""The POP3 flow with the POP3 simulator as the source and the IMAP simulator as the destination
(one world: account "src" read over POP3, account "dst" written over IMAP)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from migrator.engine import MigrationOptions, migrate
from migrator.errors import AuthenticationFailed
from migrator.sources.pop3 import apop_digest, apop_stamp, parse_capa, parse_listing, sasl_xoauth2
from migrator.urls import Endpoint, Secret, ServerURL
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import INBOX, Store

PASSWORD = "pw-pop3-1"
RECEIVED = datetime(2022, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def message(n: int, *, received: bool = True, mid: bool = True, body: str = "") -> bytes:
    head = []
    if received:
        head.append(f"Received: from mx by example.org; Fri, 6 May 2022 07:08:{n % 60:02d} +0000")
    if mid:
        head.append(f"Message-ID: <p{n}@example.org>")
    head += [f"Date: Thu, 5 May 2022 10:00:{n % 60:02d} +0200", "From: a@example.org", "To: b@example.org",
             f"Subject: pop3 message {n}"]
    return ("\r\n".join(head) + "\r\n\r\n" + (body or f"body {n}\r\n" * (1 + n % 4))).encode()


def make_store(messages: list[bytes], *, other_folders: dict[tuple[str, ...], int] | None = None) -> Store:
    store = Store()
    src = store.add_account("src", PASSWORD)
    store.add_account("dst", PASSWORD)
    for raw in messages:
        src.append(INBOX, raw, internaldate=datetime(2030, 1, 1, tzinfo=timezone.utc))  # never used: POP3 has none
    for path, count in (other_folders or {}).items():
        src.create_folder(path, exist_ok=True)
        for i in range(count):
            src.append(path, message(1000 + i))
    return store


def inbox(store: Store, name: str, folder: tuple[str, ...] = INBOX) -> list:
    return sorted((m.raw, m.internaldate.astimezone(timezone.utc), frozenset(m.flags - {"\\Recent"}))
                  for m in store.accounts[name].folders[folder].messages)


def run(store: Store, tmp_path, *, quirks=(), profile=None, url_query="", implicit_tls=False, password=PASSWORD,
        **options) -> tuple:
    profile = (profile or load_profile("generic")).with_quirks(list(quirks))
    options.setdefault("state_path", tmp_path / "state.sqlite")
    options.setdefault("batch_size", 4)
    with SimulatorWorld(store, profile) as world:
        pop3, imap = world.start_pop3(implicit_tls=implicit_tls), world.start_imap()
        src = Endpoint(ServerURL.parse(pop3.url("src") + url_query), Secret(password), cafile=world.cafile)
        dst = Endpoint(ServerURL.parse(imap.url("dst")), Secret(PASSWORD), cafile=world.cafile)
        return migrate(src, dst, MigrationOptions(**options))


# Pure helpers ----------------------------------------------------------------------------------


def test_pure_helpers():
    assert parse_capa([b"TOP", b"SASL PLAIN xoauth2", b"LOGIN-DELAY 900"]) == {
        "TOP": [], "SASL": ["PLAIN", "XOAUTH2"], "LOGIN-DELAY": ["900"]}
    assert parse_listing([b"1 abc", b"2 d e", b"junk"]) == {1: "abc", 2: "d e"}
    stamp = apop_stamp(b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>")
    assert stamp == b"<1896.697170952@dbc.mtview.ca.us>"
    assert apop_digest(stamp, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"  # RFC 1939 §7's example
    assert apop_stamp(b"+OK Dovecot ready.") is None
    assert sasl_xoauth2("u", "t") == "dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ=="


def test_checkpoint_is_a_multiset_of_uidl_and_identity():
    from migrator.identity import IdentityIndex, identity_of
    from migrator.pop3_flow import Pop3Message, _Checkpoint, batches, uidl_kind
    from migrator.sources.pop3 import Pop3Listing
    from migrator.state import Pop3Confirmed

    assert uidl_kind(Pop3Listing({1: 5}, None)) == "missing"
    assert uidl_kind(Pop3Listing({1: 5, 2: 5}, {1: "a", 2: "a"})) == "duplicated"
    assert uidl_kind(Pop3Listing({1: 5, 2: 5}, {1: "a", 2: "b"})) == "unique"
    assert [len(b) for b in batches([Pop3Message(n, "", 10) for n in range(5)], 2)] == [2, 2, 1]
    one, two = identity_of(message(1), 300), identity_of(message(2), 300)
    rows = [Pop3Confirmed("u1", str(one), "INBOX", 1, "appended"), Pop3Confirmed("", str(two), "INBOX", 2, "appended"),
            Pop3Confirmed("", str(two), "INBOX", 3, "matched")]
    dest = IdentityIndex()
    for ident in (one, two, two, two):
        dest.add(ident)
    cp = _Checkpoint(rows, [], dest)
    settle = lambda uidl, ident: cp.settle(Pop3Message(1, uidl, 300, ident))  # noqa: E731
    assert settle("u9", one) is None  # another UIDL: the destination's copy belongs to the checkpointed u1
    assert settle("u1", one) == "copied"
    # three identical messages without UIDL: the copied one, the matched one, one more at the destination
    assert [settle("", two), settle("", two), settle("", two)] == ["copied", "matched", "found"]
    assert settle("", two) is None  # a fourth is new: every destination copy is spoken for


# Copying ---------------------------------------------------------------------------------------


def test_inbox_copied_with_received_dates_then_rerun_copies_nothing(tmp_path):
    msgs = [message(n) for n in range(10)] + [message(50, received=False)]
    store = make_store(msgs, other_folders={("Archive",): 3, ("Work",): 2})
    map_path = tmp_path / "uidl.json"
    report = run(store, tmp_path, uidl_map_path=map_path, source_total_messages=16, source_total_folders=3)
    assert (report.copied, report.failed, report.skipped_count, report.exit_code) == (11, 0, 0, 0)
    got = inbox(store, "dst")
    want = sorted([(m, datetime(2022, 5, 6, 7, 8, n % 60, tzinfo=timezone.utc), frozenset()) for n, m in enumerate(msgs[:10])]
                  + [(msgs[10], datetime(2022, 5, 5, 8, 0, 50, tzinfo=timezone.utc), frozenset())])
    assert got == want  # bytes, no flags, the Received instant (else Date), never the migration time
    assert sorted(f.used for f in report.date_fallbacks) == ["date"] + ["received"] * 10
    pop3 = report.pop3
    assert (pop3.delivery, pop3.folder, pop3.uidl, pop3.top, pop3.deleted, pop3.kept) == ("imap", "INBOX", "unique", True, 0, 11)
    assert (pop3.left_behind_messages, pop3.left_behind_folders) == (5, 2)
    assert any("inbox only" in n for n in report.notes) and any("5 message(s) in 2 other folder" in n for n in report.notes)
    assert any("INTERNALDATE" in loss for loss in pop3.losses)
    doc = json.loads(map_path.read_text())
    assert doc["format"] == "quirkmail-pop3-uidl-map/1" and len(doc["messages"]) == 11
    assert sorted(m["destination_uid"] for m in doc["messages"]) == list(range(1, 12))
    assert len({m["uidl"] for m in doc["messages"]}) == 11
    assert len(store.accounts["src"].folders[INBOX].messages) == 11  # left on the server
    again = run(store, tmp_path)
    assert (again.copied, again.already_present) == (0, 11)
    assert len(inbox(store, "dst")) == 11


def test_report_lists_the_mitigations_switched_off(tmp_path):
    # As the IMAP engine's report does (both start from MigrationReport.begin), and the summary says so.
    from migrator.cli import summary_table

    report = run(make_store([message(1)]), tmp_path, disable=["throttle-backoff", "identity-dedup"])
    assert (report.copied, report.mitigations_off) == (1, ["identity-dedup", "throttle-backoff"])
    assert "mitigations OFF: identity-dedup, throttle-backoff" in summary_table(report).caption
    assert run(make_store([message(1)]), tmp_path, state_path=tmp_path / "other.sqlite").mitigations_off == []


@pytest.mark.parametrize("quirk", [QuirkSpec(name="pop3-uidl-missing"),
                                   QuirkSpec(name="pop3-uidl-duplicated", params={"messages": [1, 2, 3]}),
                                   QuirkSpec(name="pop3-top-unsupported")])
def test_uidl_and_top_quirks_copy_each_message_once(tmp_path, quirk):
    twin = message(7)
    store = make_store([message(n) for n in range(6)] + [twin, twin])  # two identical messages
    report = run(store, tmp_path, quirks=[quirk])
    assert (report.copied, report.failed) == (8, 0)
    kind = {"pop3-uidl-missing": "missing", "pop3-uidl-duplicated": "duplicated"}.get(quirk.name, "unique")
    assert report.pop3.uidl == kind and report.pop3.top == (quirk.name != "pop3-top-unsupported")
    assert [r for r, _, _ in inbox(store, "dst")].count(twin) == 2
    again = run(store, tmp_path, quirks=[quirk])
    assert (again.copied, again.already_present) == (0, 8)
    assert len(inbox(store, "dst")) == 8


def test_merge_finds_copies_without_a_checkpoint(tmp_path):
    store = make_store([message(n) for n in range(5)])
    run(store, tmp_path, state_path=tmp_path / "a.sqlite")
    report = run(store, tmp_path, state_path=tmp_path / "b.sqlite")  # checkpoint lost
    assert (report.copied, report.already_present) == (0, 5)


def test_into_a_subfolder(tmp_path):
    store = make_store([message(n) for n in range(3)])
    report = run(store, tmp_path, pop3_folder="Imported/POP3")
    assert report.copied == 3 and report.folders[0].destination == "Imported/POP3"
    assert len(inbox(store, "dst", ("Imported", "POP3"))) == 3 and not store.accounts["dst"].folders[INBOX].messages


def test_drop_mid_retr_resumes_without_duplicates_and_deletes_only_confirmed(tmp_path):
    store = make_store([message(n) for n in range(9)])
    quirk = QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 6, "times": 2})
    report = run(store, tmp_path, quirks=[quirk], pop3_delete=True)
    assert (report.copied, report.failed, report.pop3.reconnects) == (9, 0, 2)
    assert len(inbox(store, "dst")) == 9
    assert report.pop3.deleted == 9 and store.accounts["src"].folders[INBOX].messages == []


def test_drop_every_retr_aborts_and_deletes_nothing(tmp_path):
    store = make_store([message(n) for n in range(6)])
    quirk = QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 5, "times": 0})
    report = run(store, tmp_path, quirks=[quirk], pop3_delete=True, batch_size=2)
    assert report.aborted and report.exit_code == 5
    assert len(inbox(store, "dst")) == 4  # messages 1-4 arrived, once each
    assert report.pop3.deleted == 0 and len(store.accounts["src"].folders[INBOX].messages) == 6
    assert report.pop3.delete_failed


def test_refused_message_is_reported_and_not_deleted(tmp_path):
    big = message(99, body="x" * 6000)
    store = make_store([message(1), big, message(2)])
    quirk = QuirkSpec(name="appendlimit", params={"bytes": 5000, "advertise": False})
    report = run(store, tmp_path, quirks=[quirk], pop3_delete=True)
    assert (report.copied, report.skipped_count, report.exit_code) == (2, 1, 1)
    assert report.skipped[0].reason == "too-large" and report.skipped[0].uid == 2
    assert [m.raw for m in store.accounts["src"].folders[INBOX].messages] == [big]
    assert report.pop3.deleted == 2


def test_delete_on_retrieve_server_keeps_mail_when_leaving_on_server(tmp_path):
    store = make_store([message(n) for n in range(4)])
    report = run(store, tmp_path, quirks=[QuirkSpec(name="pop3-delete-on-retrieve")])
    assert report.copied == 4 and report.pop3.deleted == 0
    assert len(store.accounts["src"].folders[INBOX].messages) == 4  # RSET before QUIT


# Logins and TLS --------------------------------------------------------------------------------


def test_login_methods_and_tls(tmp_path):
    generic = load_profile("generic")
    apop = generic.model_copy(update={"pop3": generic.pop3.model_copy(update={"apop": True})})
    caps = [c if not c.startswith("SASL") else c + " XOAUTH2" for c in generic.pop3.capabilities_before_auth]
    oauth = generic.model_copy(update={"pop3": generic.pop3.model_copy(update={"capabilities_before_auth": caps})})
    cases = [
        (dict(), ("plain", "starttls")),
        (dict(url_query="?auth=user&starttls=no"), ("user", "none")),
        (dict(profile=apop), ("apop", "starttls")),
        (dict(url_query="?auth=xoauth2", profile=oauth), ("xoauth2", "starttls")),  # the password doubles as the token
        (dict(implicit_tls=True), ("plain", "implicit")),
    ]
    for i, (kw, (login, tls)) in enumerate(cases):
        store = make_store([message(1)])
        report = run(store, tmp_path, state_path=tmp_path / f"{i}.sqlite", **kw)
        assert (report.copied, report.pop3.login, report.pop3.tls) == (1, login, tls), kw
        # re-read after login (and after STLS): the SASL line is gone once authenticated
        assert "SASL" in report.pop3.capabilities_before and "SASL" not in report.pop3.capabilities_after


def test_untrusted_certificate_is_refused(tmp_path):
    store = make_store([message(1)])
    with SimulatorWorld(store, load_profile("generic")) as world:
        pop3 = world.start_pop3(implicit_tls=True)
        src = Endpoint(ServerURL.parse(pop3.url("src")), Secret(PASSWORD))  # no cafile
        dst = Endpoint(ServerURL.parse(world.start_imap().url("dst")), Secret(PASSWORD), cafile=world.cafile)
        with pytest.raises(Exception, match="certificate verify failed"):
            migrate(src, dst, MigrationOptions(state_path=tmp_path / "s.sqlite"))


@pytest.mark.parametrize("quirk,password,hint", [
    (None, "wrong", "login refused: -ERR [AUTH] Authentication failed."),
    ("app-password-required", "wrong", "application-specific password"),
    ("oauth-only", PASSWORD, "basic authentication is disabled"),
])
def test_refused_login_is_classified(tmp_path, quirk, password, hint):
    store = make_store([message(1)])
    with pytest.raises(AuthenticationFailed, match=hint.replace("[", r"\[").replace(".", r"\.")) as info:
        run(store, tmp_path, quirks=[QuirkSpec(name=quirk)] if quirk else [], password=password)
    assert info.value.exit_code == 4 and password not in str(info.value)
    assert store.accounts["dst"].folders[INBOX].messages == []


def test_dry_run_writes_nothing(tmp_path):
    store = make_store([message(n) for n in range(3)])
    report = run(store, tmp_path, dry_run=True, pop3_delete=True, pop3_folder="New", uidl_map_path=tmp_path / "m.json")
    assert (report.copied, report.pop3.deleted, report.dry_run) == (3, 0, True)
    assert ("New",) not in store.accounts["dst"].folders and not (tmp_path / "m.json").exists()
    assert not (tmp_path / "state.sqlite").exists() and len(store.accounts["src"].folders[INBOX].messages) == 3


def test_connection_test_reads_nothing(tmp_path):
    from migrator.engine import test_connection

    store = make_store([message(n) for n in range(3)], other_folders={("X",): 1})
    with SimulatorWorld(store, load_profile("generic").with_quirks([QuirkSpec(name="pop3-delete-on-retrieve")])) as world:
        url = world.start_pop3().url("src")
        rep = test_connection(Endpoint(ServerURL.parse(url), Secret(PASSWORD), cafile=world.cafile), role="source")
    assert (rep.inbox_messages, rep.tls, rep.folders) == (3, "starttls", 1) and "UIDL" in rep.capabilities
    assert len(store.accounts["src"].folders[INBOX].messages) == 3


def test_delivery_over_smtp_reports_losses_and_keeps_refused_mail(tmp_path):
    big = message(98, body="y" * 8000)
    msgs = [message(1), big, message(2)]
    store = make_store(msgs)
    profile = load_profile("generic").with_quirks([QuirkSpec(name="smtp-size-552", params={"bytes": 5000})])
    with SimulatorWorld(store, profile) as world:
        pop3, smtp = world.start_pop3(), world.start_smtp()
        src = Endpoint(ServerURL.parse(pop3.url("src")), Secret(PASSWORD), cafile=world.cafile)
        dst = Endpoint(ServerURL.parse(f"smtp://dst@{smtp.host}:{smtp.port}"), Secret(""), cafile=world.cafile)
        opts = MigrationOptions(state_path=tmp_path / "s.sqlite", pop3_delete=True)
        report = migrate(src, dst, opts)
        assert (report.copied, report.skipped_count, report.pop3.delivery, report.pop3.deleted) == (2, 1, "smtp", 2)
        assert report.skipped[0].uid == 2 and "552" in report.skipped[0].detail
        assert any("INTERNALDATE" in loss for loss in report.pop3.losses)
        assert [m.raw for m in store.accounts["src"].folders[INBOX].messages] == [big]  # refused: kept
        delivered = [m.raw for m in store.accounts["dst"].folders[INBOX].messages]
        assert len(delivered) == 2 and all(any(d.endswith(raw) for d in delivered) for raw in (msgs[0], msgs[2]))
        again = migrate(src, dst, opts)  # the refused one is tried again, and refused again
        assert (again.copied, again.skipped_count, len(store.accounts["dst"].folders[INBOX].messages)) == (0, 1, 2)


def test_replace_mode_empties_the_folder_and_copies_again(tmp_path):
    store = make_store([message(n) for n in range(3)])
    run(store, tmp_path)
    store.accounts["dst"].append(INBOX, message(77))  # something else already there
    report = run(store, tmp_path, mode="replace")
    assert (report.copied, report.already_present) == (3, 0)
    assert sorted(r for r, _, _ in inbox(store, "dst")) == sorted(message(n) for n in range(3))
    assert report.folders[0].notes == ["deleted 4 destination message(s)"]


def test_reconnect_refused_by_login_delay_aborts_with_the_reason(tmp_path):
    store = make_store([message(n) for n in range(6)])
    quirks = [QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 5}),
              QuirkSpec(name="pop3-login-delay", params={"seconds": 900})]
    report = run(store, tmp_path, quirks=quirks, pop3_delete=True)
    assert report.aborted and "LOGIN-DELAY" in report.aborted and report.exit_code == 5
    assert len(inbox(store, "dst")) == 4  # the first batch (1-4) arrived; 5 was cut mid-RETR
    assert len(store.accounts["src"].folders[INBOX].messages) == 6 and report.pop3.deleted == 0


def test_expired_token_is_refused_with_the_oauth_hint_not_basic_auth(tmp_path):
    store = make_store([message(1)])
    with pytest.raises(AuthenticationFailed, match="login refused") as info:
        run(store, tmp_path, quirks=[QuirkSpec(name="oauth-only")], url_query="?auth=xoauth2", password="expired-token")
    assert "basic authentication" not in str(info.value) and "expired-token" not in str(info.value)


def test_refusal_reported_once_across_a_reconnect(tmp_path):
    big = message(99, body="x" * 6000)
    store = make_store([message(1), big, message(2), message(3), message(4), message(5)])
    quirks = [QuirkSpec(name="appendlimit", params={"bytes": 5000, "advertise": False}),
              QuirkSpec(name="pop3-drop-mid-retr", params={"after_bytes": 60, "message": 6})]
    report = run(store, tmp_path, quirks=quirks, pop3_delete=True)
    assert (report.copied, report.skipped_count, report.pop3.reconnects, report.pop3.deleted) == (5, 1, 1, 5)
    assert [m.raw for m in store.accounts["src"].folders[INBOX].messages] == [big]
    assert len(inbox(store, "dst")) == 5


def test_long_lines_and_dot_lines_survive_byte_for_byte(tmp_path):
    # poplib alone refuses lines over 2048 bytes; a leading "." is dot-stuffed on the wire.
    raw = message(3, body="A" * 70000 + "\r\n.hidden dot\r\n..two dots\r\n.\r\nend\r\n")
    store = make_store([raw])
    report = run(store, tmp_path, quirks=[QuirkSpec(name="pop3-top-unsupported")])
    assert report.copied == 1 and [r for r, _, _ in inbox(store, "dst")] == [raw]
