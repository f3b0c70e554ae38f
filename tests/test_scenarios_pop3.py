"""The POP3 scenario library (scenarios/library/pop3/): each scenario passes as written, and fails
with a precise sentence when the behaviour it guards is switched off — a quirk removed, an option
flipped, the engine tampered with (monkeypatch), or the destination damaged after the run.

Pure pieces first: the delivery-trace stripper, the expected destination of a POP3 run, the
``expect.pop3`` / ``expect.live`` sentences and the model's role checks.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import imapclient
import pytest
import yaml

from migrator import pop3_flow
from migrator.identity import Identity
from migrator.sources.pop3 import Pop3Source
from migrator.state import State
from scenarios.model import ScenarioError, load_scenario
from scenarios.pop3_expect import LiveExpectations, Pop3Expectations, check_live, check_pop3
from scenarios.runner import Side, run_scenario
from scenarios.sides_pop3 import expected_at_destination, strip_delivery_trace
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, record_of
from simulators.traffic import TrafficSpec, compose_live

LIBRARY = Path(__file__).resolve().parents[1] / "scenarios" / "library"
POP3 = LIBRARY / "pop3"


# Pure pieces -----------------------------------------------------------------------------------


def test_strip_delivery_trace_removes_only_what_lmtp_added():
    original = b"Received: from mx by isp; Tue, 14 Mar 2023 09:15:02 +0100\r\nSubject: s\r\n\r\nbody\r\n"
    delivered = (
        b"Return-Path: <>\r\nDelivered-To: dest1\r\n"
        b"Received: from 127.0.0.1 ([127.0.0.1])\r\n\tby host with LMTP\r\n\tid abc; Sun, 22 Nov 2026 15:00:00 +0000\r\n"
        + original
    )
    assert strip_delivery_trace(delivered) == original
    assert strip_delivery_trace(original) == original  # nothing of ours on top: untouched
    assert strip_delivery_trace(b"Return-Path: <a@b>\r\n" + original) == original


def _snap(*raws: bytes, flags=("\\Seen",)) -> MailboxSnapshot:
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    records = [record_of(i + 1, raw, flags, when) for i, raw in enumerate(raws)]
    other = [record_of(9, b"Subject: elsewhere\r\n\r\nx\r\n", (), when)]
    return MailboxSnapshot(label="s", folders={
        "INBOX": FolderSnapshot(path=("INBOX",), name="INBOX", messages=records),
        "Sent": FolderSnapshot(path=("Sent",), name="Sent", messages=other),
    })


def test_expected_destination_is_every_inbox_message_seen_dated_and_flagless():
    a, b, c = (f"Message-ID: <{n}@x>\r\n\r\n{n}\r\n".encode() for n in "abc")
    first, second = _snap(a, b, b), _snap(c)  # deleted after run 1, then c arrived
    instants = {record_of(1, a, (), datetime.now(timezone.utc)).sha256: datetime(2022, 1, 2, tzinfo=timezone.utc)}
    out = expected_at_destination([first, second], instants, "Imported/POP3", "pop3://x")
    folder = out.folders["Imported/POP3"]
    assert list(out.folders) == ["Imported/POP3"] and folder.path == ("Imported", "POP3")
    assert sorted(m.identity for m in folder.messages) == ["<a@x>", "<b@x>", "<b@x>", "<c@x>"]
    assert all(m.flags == frozenset() for m in folder.messages)
    dated = {m.identity: m.internaldate for m in folder.messages}
    assert dated["<a@x>"] == datetime(2022, 1, 2, tzinfo=timezone.utc)
    assert dated["<c@x>"] == datetime(2030, 1, 1, tzinfo=timezone.utc)  # no instant known: the mismatch shows


def test_pop3_and_live_sentences():
    run = SimpleNamespace(error="AuthenticationFailed: login refused: -ERR nope", report={
        "notes": ["POP3 shows the inbox only"], "date_fallbacks": [{"used": "date"}],
        "pop3": {"deleted": 3, "uidl": "unique", "losses": ["flags: none"], "left_behind_messages": 4, "reconnects": 1},
    })
    wanted = Pop3Expectations(source_folders={"INBOX": 0}, deleted=0, uidl="missing", notes=["left behind"],
                              losses=["INTERNALDATE"], left_behind={"messages": 5}, dates_used={"received": 1},
                              reconnects=2, error="application-specific")
    assert check_pop3(wanted, [run], {"INBOX": 2}, None) == [
        "source folder 'INBOX' holds 2 messages after the migration, expected 0",
        "the POP3 report says deleted = 3, expected 0",
        "the POP3 report says uidl = 'unique', expected 'missing'",
        "the engine reconnected to the POP3 source 1 times, expected 2",
        "no report notes mention 'left behind' (they are: POP3 shows the inbox only)",
        "no POP3 losses mention 'INTERNALDATE' (they are: flags: none)",
        "the report says 4 messages left behind by POP3, expected 5",
        "the dates came from date 1, expected received 1",
        "the run's error does not say 'application-specific': AuthenticationFailed: login refused: -ERR nope",
    ]
    outcome = {"accepted": 3, "lost": ["<l@x>"], "duplicated": [], "sent": 3, "refused": []}
    assert check_live(LiveExpectations(accepted=4), outcome) == [
        "the source accepted 3 live messages over SMTP, expected 4",
        "1 live messages lost at the destination, expected 0 (e.g. <l@x>)",
    ]
    assert check_live(LiveExpectations(), None) == ["expect.live is given but the scenario has no migration.live_traffic"]


@pytest.mark.parametrize("text,field,problem", [
    ("source: {server: simulator, protocol: smtp}", "source.protocol", "it can be a destination, not a source"),
    ("source: {server: simulator}\ndestination: {server: dovecot, protocol: pop3}", "destination.protocol", "not a destination"),
    ("source: {server: simulator}\ndestination: {server: dovecot, protocol: lmtp}", "destination.protocol", "takes a pop3 source"),
    ("source: {server: simulator, protocol: pop3}\ndestination: {server: simulator, protocol: lmtp}",
     "destination.server", "lmtp delivery is dovecot's here"),
    ("source: {server: dovecot, protocol: pop3}\nmigration: {live_traffic: {messages: 2}}", "migration.live_traffic",
     "simulator source"),
    ("source: {server: simulator}\nexpect: {pop3: {deleted: 0}}", "expect.pop3", "needs a pop3 source"),
    ("source: {server: simulator, protocol: pop3}\nexpect: {pop3: {delted: 0}}", "expect.pop3.delted", "Extra inputs"),
    ("source: {server: simulator}\nmigration: {live_traffic: {mesages: 2}}", "migration.live_traffic.mesages", "Extra inputs"),
])
def test_model_refuses_what_cannot_run(tmp_path, text, field, problem):
    path = tmp_path / "pop3" / "bad.yaml"
    path.parent.mkdir()
    path.write_text(text + "\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.field == field and problem in info.value.problem


# The library -----------------------------------------------------------------------------------


@pytest.fixture
def dovecot_available():
    from scenarios.peers.dovecot import availability

    if availability():
        pytest.skip(availability())


def variant(tmp_path: Path, path: Path, change) -> Path:
    """A copy of a library scenario with ``change(data)`` applied (same area folder name)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    out = tmp_path / path.parent.name / path.name
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return out


def run(path: Path, **kw):
    return run_scenario(load_scenario(path), **kw)


def imap_session(side: Side) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient(side.host, port=side.port, ssl=False)
    client.login(side.user, side.password)
    return client


def damage(action: str, folder: str = "INBOX", message_id: str | None = None):
    """An ``after_migration`` hook: delete one destination message, or append a second copy of it."""

    def hook(source: Side, dest: Side) -> None:
        with imap_session(dest) as c:
            c.select_folder(folder)
            uids = c.search(["HEADER", "Message-ID", message_id]) if message_id else sorted(c.search("ALL"))
            if action == "delete":
                c.delete_messages(uids[:1])
                c.expunge()
            else:
                raw = c.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
                c.append(folder, raw)

    return hook


def engine_dates_now(monkeypatch) -> None:
    """Tamper: the engine dates every POP3 copy with the time of the migration."""
    now = datetime.now(timezone.utc)
    fake = SimpleNamespace(resolve=lambda _internal, _raw: SimpleNamespace(instant=now, used="date", detail="tampered"))
    monkeypatch.setattr(pop3_flow, "dates", fake)


def engine_deletes_everything(monkeypatch) -> None:
    """Tamper: DELE every message of the session, confirmed by the destination or not."""
    original = Pop3Source.delete
    monkeypatch.setattr(Pop3Source, "delete", lambda self, numbers: original(self, sorted(self.listing().sizes)))


def drop_quirk(name: str):
    def change(data):
        for side in ("source", "destination"):
            quirks = data.get(side, {}).get("quirks", [])
            data.get(side, {})["quirks"] = [q for q in quirks if not str(q).startswith(name)]

    return change


def set_option(key: str, value):
    def change(data):
        data.setdefault("migration", {}).setdefault("options", {})[key] = value

    return change


def test_every_pop3_scenario_but_the_login_delay_finding_passes(dovecot_available):
    failed = {}
    for path in sorted(POP3.glob("*.yaml")):
        result = run(path)
        if not result.passed:
            failed[path.stem] = result.failures or result.error
    # login-delay states what we want (a LOGIN-DELAY refusal is not exit 4); the engine differs.
    assert set(failed) <= {"login-delay"}, failed


def test_leave_on_server_fails_when_the_engine_deletes(tmp_path, dovecot_available):
    result = run(variant(tmp_path, POP3 / "leave-on-server.yaml", set_option("pop3_delete", True)))
    assert result.failures[0].startswith("the migration changed the source mailbox: 22 missing (INBOX: 22; e.g. uid 1 <")
    assert "source folder 'INBOX' holds 0 messages after the migration, expected 22" in result.failures
    assert "the POP3 report says deleted = 22, expected 0" in result.failures


def test_leave_on_server_fails_when_copies_carry_the_migration_time(monkeypatch, dovecot_available):
    engine_dates_now(monkeypatch)
    result = run(POP3 / "leave-on-server.yaml")
    sentence = next(f for f in result.failures if f.startswith("the destination is not identical"))
    assert sentence.startswith("the destination is not identical to the source: 22 date mismatches (INBOX: 22; e.g. uid 1 <")
    assert "INTERNALDATE 20" in sentence and "the dates came from date 22, expected received 22" in result.failures


def test_date_fallbacks_fail_when_the_received_header_is_ignored(monkeypatch, dovecot_available):
    engine_dates_now(monkeypatch)
    result = run(POP3 / "date-fallbacks.yaml")
    assert result.failures[0].startswith("the destination is not identical to the source: 4 date mismatches (INBOX: 4;")
    assert result.failures[-1] == "the dates came from date 4, expected date 2, received 2"


def test_delete_after_confirm_fails_when_nothing_is_deleted(monkeypatch, dovecot_available):
    monkeypatch.setattr(Pop3Source, "delete", lambda self, numbers: [])
    result = run(POP3 / "delete-after-confirm.yaml")
    assert result.failures == [
        "source folder 'INBOX' holds 22 messages after the migration, expected 0",
        "the POP3 report says deleted = 0, expected 22",
        "the POP3 report says kept = 22, expected 0",
    ]


def test_cutover_delta_fails_on_a_duplicate(dovecot_available):
    result = run(POP3 / "pop3-cutover-delta.yaml", after_migration=damage("duplicate"))
    assert result.failures[0].startswith("the destination is not identical to the source: 1 duplicated (INBOX: 1; e.g. uid 27 <")
    assert result.failures[1].startswith("1 duplicated messages at the destination, expected 0 (INBOX: 1;")


def test_into_subfolder_fails_without_the_folder_option(tmp_path, dovecot_available):
    def change(data):
        del data["migration"]["options"]["pop3_folder"]

    result = run(variant(tmp_path, POP3 / "into-subfolder.yaml", change))
    assert result.failures[:2] == [
        "destination folder 'INBOX' holds 15 messages, expected 0",
        "destination folder 'Imported/Old ISP' does not exist, expected 15 messages",
    ]


def test_uidl_missing_fails_when_identity_ignores_the_content(monkeypatch, dovecot_available):
    monkeypatch.setattr(pop3_flow, "identity_of", lambda raw, size: Identity(uuid.uuid4().hex, size))
    result = run(POP3 / "uidl-missing.yaml")
    assert "run 2 copied 22 messages, expected 0" in result.failures
    assert any(f.startswith("22 duplicated messages at the destination, expected 0") for f in result.failures)


@pytest.mark.parametrize("name,quirk,sentence", [
    ("uidl-missing", "pop3-uidl-missing", "the POP3 report says uidl = 'unique', expected 'missing'"),
    ("uidl-duplicated", "pop3-uidl-duplicated", "the POP3 report says uidl = 'unique', expected 'duplicated'"),
    ("top-unsupported", "pop3-top-unsupported", "the POP3 report says top = True, expected False"),
    ("oauth-only", "oauth-only", "run 1 ended with exit code 0, expected 4"),
    ("login-delay", "pop3-login-delay", "run 2 ended with exit code 0, expected 5"),
    ("session-lock", "pop3-drop-mid-retr", "the engine reconnected to the POP3 source 0 times, expected 1"),
    ("drop-mid-retr", "pop3-drop-mid-retr", "the engine reconnected to the POP3 source 0 times, expected 2"),
])
def test_a_scenario_without_its_quirk_fails(tmp_path, dovecot_available, name, quirk, sentence):
    result = run(variant(tmp_path, POP3 / f"{name}.yaml", drop_quirk(quirk)))
    assert sentence in result.failures, result.failures


def test_app_password_scenario_fails_on_a_plain_refusal(tmp_path, dovecot_available):
    result = run(variant(tmp_path, POP3 / "app-password-required.yaml", drop_quirk("app-password-required")))
    assert len(result.failures) == 1
    assert result.failures[0].startswith(
        "the run's error does not say 'application-specific password': AuthenticationFailed: source pop3://alice@127.0.0.1:")
    assert result.failures[0].endswith(": login refused: -ERR [AUTH] Authentication failed.")


def test_wrong_password_scenario_fails_with_the_right_one(tmp_path, dovecot_available):
    def change(data):
        data["source"]["wrong_password"] = False

    result = run(variant(tmp_path, POP3 / "wrong-password.yaml", change))
    assert result.failures[0].startswith("the migration changed the source mailbox: 5 missing (INBOX: 5;")
    assert "run 1 ended with exit code 0, expected 4" in result.failures
    assert "source folder 'INBOX' holds 0 messages after the migration, expected 5" in result.failures


def test_delete_on_retrieve_fails_without_the_reset(monkeypatch, dovecot_available):
    monkeypatch.setattr(Pop3Source, "reset", lambda self: None)
    result = run(POP3 / "delete-on-retrieve.yaml")
    assert result.failures[0].startswith("the migration changed the source mailbox: 10 missing (INBOX: 10;")
    assert "source folder 'INBOX' holds 0 messages after the migration, expected 10" in result.failures


def test_drops_fail_on_a_damaged_destination(dovecot_available):
    result = run(POP3 / "drop-mid-retr.yaml", after_migration=damage("duplicate"))
    assert any(f.startswith("1 duplicated messages at the destination, expected 0") for f in result.failures)
    result = run(POP3 / "drop-every-retr.yaml", after_migration=damage("delete"))
    assert result.failures == ["destination folder 'INBOX' holds 5 messages, expected 6"]


@pytest.mark.parametrize("name,kept", [("refused-by-destination", 1), ("drop-every-retr", 10)])
def test_unconfirmed_mail_deleted_from_the_source_fails(monkeypatch, dovecot_available, name, kept):
    engine_deletes_everything(monkeypatch)
    result = run(POP3 / f"{name}.yaml")
    if name == "drop-every-retr":  # an aborted run never reaches QUIT: the tamper cannot bite
        assert result.passed, result.failures
        return
    assert f"source folder 'INBOX' holds 0 messages after the migration, expected {kept}" in result.failures


def test_dovecot_source_fails_on_a_missing_message(dovecot_available):
    result = run(POP3 / "dovecot-pop3-source.yaml", after_migration=damage("delete"))
    assert result.failures[0].startswith("the destination is not identical to the source: 1 missing (INBOX: 1;")


def test_lmtp_delivery_fails_without_the_checkpoint(monkeypatch, dovecot_available):
    monkeypatch.setattr(State, "pop3_done", lambda self: [])
    result = run(POP3 / "lmtp-into-dovecot.yaml")
    assert "run 2 copied 12 messages, expected 0" in result.failures
    assert any(f.startswith("12 duplicated messages at the destination, expected 0") for f in result.failures)


def test_live_traffic_fails_when_a_live_message_is_lost_or_doubled(dovecot_available):
    live_id = compose_live(TrafficSpec(seed=272, messages=12), "alice@example.net")[3].message_id
    result = run(POP3 / "live-traffic-cutover.yaml", after_migration=damage("delete", message_id=live_id))
    assert f"1 live messages lost at the destination, expected 0 (e.g. {live_id})" in result.failures
    result = run(POP3 / "live-traffic-cutover.yaml", after_migration=damage("duplicate", message_id=live_id))
    assert f"1 live messages duplicated at the destination, expected 0 (e.g. {live_id})" in result.failures
    assert result.live["accepted"] == 12 and not result.live["refused"]


def test_session_lock_bites_an_engine_that_holds_two_sessions(monkeypatch, dovecot_available):
    original = pop3_flow.Pop3Run.execute

    def execute(self):
        self.extra = Pop3Source(self.source)  # a second session kept open: the lock refuses the next login
        try:
            original(self)
        finally:
            self.extra.abandon()

    monkeypatch.setattr(pop3_flow.Pop3Run, "execute", execute)
    result = run(POP3 / "session-lock.yaml")
    # [IN-USE] is "later", not a wrong password: retried with backoff, then aborted (exit 5, resumable)
    assert result.failures[0].startswith("run 1 ended with exit code 5, expected 0: LoginDeferred: source pop3://")
    assert "-ERR [IN-USE] Mailbox is locked by another POP3 session." in result.failures[0]


def test_uidl_map_scenarios_fail_without_the_map(monkeypatch, dovecot_available):
    result = run(POP3 / "uidl-missing.yaml")
    assert result.passed, result.failures
    monkeypatch.setattr(pop3_flow, "write_uidl_map", lambda *args: None)
    result = run(POP3 / "leave-on-server.yaml")
    assert result.failures == ["the engine wrote no source-UIDL map"]


def test_uidl_map_sentences(tmp_path):
    path = tmp_path / "map.json"
    path.write_text('{"messages": [{"uidl": "a"}, {"uidl": null}]}')
    run_ = SimpleNamespace(error="", report={"pop3": {"uidl_map": str(path)}})
    wanted = Pop3Expectations(uidl_map={"messages": 3, "with_uidl": 1})
    assert check_pop3(wanted, [run_], {}, None) == ["the source-UIDL map has 2 messages, expected 3"]
    path.write_text("not json")
    assert check_pop3(wanted, [run_], {}, None)[0].startswith(f"the source-UIDL map {path} cannot be read:")
