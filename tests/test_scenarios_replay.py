"""Scenarios whose source is a recording (scenarios/library/replay/): each passes as committed, and
fails with a sentence naming what changed — the engine without a mitigation, a tampered recording
(the divergence and its session file), a destination damaged after the run. Bad ``replay:``
values are ``ScenarioError``s naming the file and the field.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import imapclient
import pytest
import yaml

from scenarios.model import ScenarioError, load_scenario
from scenarios.replay_scenario import destination_failures
from scenarios.replay_source import (
    SentMessage,
    _fetch_literals,
    _imap_sent,
    _login_of,
    _pop3_retr,
    fetch_responses,
    load_replay_source,
)
from scenarios.runner import run_scenario
from scenarios.snapshot import FolderSnapshot, MailboxSnapshot, record_of

REPLAY = Path(__file__).resolve().parents[1] / "scenarios" / "library" / "replay"
BYE = REPLAY / "bye-mid-fetch.yaml"
POP3 = REPLAY / "pop3-drop-mid-retr.yaml"


def _copy(tmp_path: Path, scenario: Path, **changes) -> Path:
    """The scenario and its recording copied into tmp_path, with top-level blocks updated."""
    data = yaml.safe_load(scenario.read_text())
    recording = data["source"]["replay"]
    shutil.copytree(scenario.parent / recording, tmp_path / recording)
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    path = tmp_path / scenario.name
    path.write_text(yaml.safe_dump(data))
    return path


# The library ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "copied"), [(BYE, 5), (POP3, 6)], ids=["bye", "pop3"])
def test_the_replay_library_passes(path, copied):
    result = run_scenario(load_scenario(path))
    assert result.failures == [] and result.passed
    assert [r.copied for r in result.runs] == [copied]
    assert result.seconds < 5
    assert sum(result.verify.dest_counts.values()) == copied


def test_run_record_records_the_engine_against_the_replay(tmp_path):
    """`quirkmail run --record` on a replay scenario: the engine's sessions against the replay are
    recorded like any scenario's, and the source side carries the recorded server's own bytes."""
    from transcripts import format as tf

    result = run_scenario(load_scenario(POP3), record_dir=tmp_path / "rec")
    assert result.passed, result.failures
    transcripts = [tf.read(p) for p in result.transcripts]
    labels = sorted({t.header.label for t in transcripts})
    assert labels == ["destination", "source"]
    recorded = load_replay_source(POP3, yaml.safe_load(POP3.read_text())["source"]["replay"])
    wanted = {m.raw for m in recorded.sent()}
    heard = b"".join(t.sent_by(tf.Sender.SERVER) for t in transcripts if t.header.label == "source")
    assert wanted and all(raw.replace(b"\r\n.", b"\r\n..") in heard for raw in wanted)


def test_the_recorded_messages_are_read_from_the_server_bytes():
    bye = load_replay_source(BYE, BYE.with_suffix(".transcripts").name)
    pop3 = load_replay_source(POP3, POP3.with_suffix(".transcripts").name)
    assert (bye.protocol, pop3.protocol) == ("imap", "pop3")
    assert len(bye.messages()) == 6 and len(pop3.messages()) == 6
    # Only the source's sessions are played; the --record folder's destination ones are not.
    assert all("-source-" in name for name in bye.names + pop3.names)
    assert bye.login() == ("dqqre", "*" * 13)  # the recorded user; a password as long as the masked one


# A changed engine or recording fails ------------------------------------------------------------


def test_without_reconnect_resume_the_replay_scenario_fails_naming_what_was_not_played(tmp_path):
    path = _copy(tmp_path, BYE, migration={"options": {"connections": 1, "batch_size": 2,
                                                       "disable": ["reconnect-resume"]}})
    result = run_scenario(load_scenario(path))
    assert not result.passed
    text = "\n".join(result.failures)
    assert "run 1 ended with exit code" in text
    assert "recorded session(s) never played: 006-source-imap" in text
    assert "not at the destination byte-equal, expected 1 (skipped)" in text


def test_a_tampered_recording_fails_naming_the_session_file_and_the_divergent_command(tmp_path):
    path = _copy(tmp_path, BYE)
    session = tmp_path / "bye-mid-fetch.transcripts" / "006-source-imap-127.0.0.1_37823.jsonl"
    text = session.read_text()
    assert text.count("UID FETCH 3:4") == 1
    session.write_text(text.replace("UID FETCH 3:4", "UID FETCH 3:5"))
    result = run_scenario(load_scenario(path))
    assert not result.passed
    [divergence] = [f for f in result.failures if "diverged" in f]
    assert "first: 006-source-imap-127.0.0.1_37823.jsonl, step 6: expected UID FETCH 3:5" in divergence
    assert "got UID FETCH 3:4" in divergence


def test_a_skipped_message_the_expectation_does_not_allow_fails(tmp_path):
    path = _copy(tmp_path, BYE, destination={"quirks": []}, expect={"skipped": [], "exit_code": 0})
    result = run_scenario(load_scenario(path))
    assert result.failures == ["run 1 copied 6 messages, expected 5"]  # nothing refused: all six arrive
    path = _copy(tmp_path / "again", BYE, expect={"skipped": [], "exit_code": 1})
    failures = run_scenario(load_scenario(path)).failures
    assert "1 messages skipped as 'too-large', expected none" in failures
    assert any(f.startswith("1 of the 6 messages the recording sent are not at the destination") for f in failures)


def test_a_message_appended_twice_at_the_destination_fails(tmp_path):
    extra = load_replay_source(POP3, POP3.with_suffix(".transcripts").name).messages()[2]

    def damage(source, dest):
        with imapclient.IMAPClient(dest.host, port=dest.port, ssl=False) as client:
            client.login(dest.user, dest.password)
            client.append("INBOX", extra)

    result = run_scenario(load_scenario(POP3), after_migration=damage)
    assert "1 messages the recording sent are at the destination more than once" in "\n".join(result.failures)


def test_a_destination_flag_or_date_changed_after_the_run_fails_naming_the_message(tmp_path):
    sent = {m.where: m for m in load_replay_source(BYE, BYE.with_suffix(".transcripts").name).sent()}
    assert sent["INBOX UID 4"].flags == {"\\Seen", "\\Recent", "$Forwarded"}
    moved = sent["INBOX UID 2"]

    def damage(source, dest):
        with imapclient.IMAPClient(dest.host, port=dest.port, ssl=False) as client:
            client.login(dest.user, dest.password)
            client.select_folder("INBOX")
            by_bytes = {data[b"BODY[]"]: uid for uid, data in client.fetch(client.search(), ["BODY.PEEK[]"]).items()}
            client.remove_flags([by_bytes[sent["INBOX UID 4"].raw]], ["$Forwarded"])
            client.delete_messages([by_bytes[moved.raw]])
            client.expunge()
            client.append("INBOX", moved.raw, flags=["\\Seen"], msg_time=moved.internaldate + timedelta(hours=1))

    result = run_scenario(load_scenario(BYE), after_migration=damage)
    changed = sorted(f for f in result.failures if "is at the destination changed" in f)
    assert len(changed) == 2 and len(result.failures) == 2, result.failures
    assert changed[0].startswith("INBOX UID 2, Subject: ")
    assert "INTERNALDATE 2022-05-16T05:34:11-08:00 became 2022-05-16T06:34:11-08:00" in changed[0]
    assert changed[1].startswith("INBOX UID 4, Subject: ") and changed[1].endswith("changed: lost $Forwarded")


# Pure pieces ------------------------------------------------------------------------------------


def test_fetch_literals_keep_whole_messages_only():
    whole = b"* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n* 2 FETCH (RFC822 {3}\r\nabc UID 2)\r\n"
    cut = b"* 3 FETCH (UID 3 BODY[] {10}\r\nhalf* BYE gone\r\n"
    assert _fetch_literals(whole + cut) == [b"hello", b"abc"]


def test_fetch_responses_give_items_and_the_whole_body_apart():
    data = (b'* 1 FETCH (UID 7 FLAGS (\\Seen $UID) BODY[HEADER] {4}\r\nA: b BODY[] {5}\r\nhello'
            b' INTERNALDATE "01-Jan-2024 10:00:00 +0100")\r\n* 2 FETCH (FLAGS ())\r\nT OK done\r\n')
    assert list(fetch_responses(data)) == [
        (1, b'UID 7 FLAGS (\\Seen $UID) BODY[HEADER]  BODY[]  INTERNALDATE "01-Jan-2024 10:00:00 +0100")\r\n',
         b"hello"),
        (2, b"FLAGS ())\r\n", None),
    ]


def _script(*steps: tuple[bytes, bytes]):
    return SimpleNamespace(steps=[SimpleNamespace(unit=SimpleNamespace(data=u), reply=SimpleNamespace(data=r))
                                  for u, r in steps])


def test_imap_sent_takes_flags_and_date_listed_before_the_body_and_keeps_identical_messages_apart():
    body = b"Subject: same\r\n\r\nx\r\n"
    listing = (b'* 1 FETCH (UID 4 FLAGS (\\Seen \\Recent) INTERNALDATE "01-Jan-2024 10:00:00 +0100")\r\n'
               b'* 2 FETCH (UID 9 FLAGS () INTERNALDATE "02-Jan-2024 10:00:00 +0000")\r\n')
    bodies = b"".join(b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (n, u, len(body), body)
                      for n, u in ((1, 4), (2, 9)))
    script = _script((b'a SELECT "Old Mail"\r\n', b"a OK\r\n"), (b"b UID FETCH 1:* (FLAGS INTERNALDATE)\r\n", listing),
                     (b"c UID FETCH 1:* BODY.PEEK[]\r\n", bodies), (b"d UID FETCH 4 BODY.PEEK[]\r\n", bodies[:60]),
                     (b"e UID FETCH 9 BODY.PEEK[]\r\n", bodies[53:80] + b"* BYE\r\n"))
    found = list(_imap_sent(script))
    # the refetch of UID 4 is the same message (ReplaySource.sent keeps its first); the cut one is none
    assert [key for key, _ in found] == [("Old Mail", "uid", 4), ("Old Mail", "uid", 9), ("Old Mail", "uid", 4)]
    first, second = (m for _, m in found[:2])
    assert (first.where, first.raw, first.flags) == ("Old Mail UID 4", body, {"\\Seen", "\\Recent"})
    assert first.internaldate == datetime(2024, 1, 1, 9, tzinfo=timezone.utc)
    assert (second.flags, second.internaldate.utcoffset()) == (frozenset(), timedelta(0))


def test_identical_source_messages_are_each_required_with_their_own_date_and_flags():
    raw = b"Subject: twin\r\n\r\nsame\r\n"
    when = datetime(2024, 1, 1, 10, tzinfo=timezone(timedelta(hours=1)))
    sent = [SentMessage(raw, frozenset({"\\Seen", "\\Recent"}), when, "INBOX UID 1"),
            SentMessage(raw, frozenset(), when + timedelta(days=1), "INBOX UID 2")]

    def dest(*records):
        return MailboxSnapshot(label="d", folders={"INBOX": FolderSnapshot(path=("INBOX",), name="INBOX",
                                                                           messages=list(records))})

    utc = when.astimezone(timezone.utc)  # the same instant in another zone is the same date
    both = [record_of(7, raw, [], utc + timedelta(days=1)), record_of(8, raw, ["\\Seen"], utc)]
    assert destination_failures(sent, dest(*both), allowed_missing=0) == []
    [failure] = destination_failures(sent, dest(both[1]), allowed_missing=0)
    assert failure == ("1 of the 2 messages the recording sent are not at the destination byte-equal, "
                       "expected 0 (skipped) (e.g. INBOX UID 2, Subject: twin)")
    flagged = record_of(7, raw, ["\\Flagged"], utc + timedelta(days=1))
    assert destination_failures(sent, dest(flagged, both[1]), allowed_missing=0) == [
        "INBOX UID 2, Subject: twin is at the destination changed: gained \\Flagged"]
    # A flag the destination's PERMANENTFLAGS cannot hold is the verifier's note, not a failure.
    lost = record_of(8, raw, [], utc)
    narrow = dest(both[0], lost)
    narrow.folders["INBOX"].permanent_flags = ["\\Flagged"]
    assert destination_failures(sent, narrow, allowed_missing=0) == []


def test_pop3_retr_unstuffs_and_drops_a_cut_message():
    assert _pop3_retr("RETR", b"+OK 9 octets\r\nA: b\r\n\r\n..x\r\n.\r\n") == [b"A: b\r\n\r\n.x\r\n"]
    assert _pop3_retr("RETR", b"+OK 9 octets\r\nA: b\r\n") == []
    assert _pop3_retr("TOP", b"+OK\r\nA: b\r\n.\r\n") == []


def test_recorded_logins_give_credentials_of_the_masked_length():
    assert _login_of(b'a1 LOGIN bob "*****"\r\n', b"") == ("bob", "*****")
    assert _login_of(b"a1 LOGIN bob *****\r\n", b"") == ("bob", "xxxxx")
    assert _login_of(b"USER carol\r\n", b"PASS ******\r\n") == ("carol", "xxxxxx")
    user, password = _login_of(b"AUTH PLAIN " + b"*" * 28 + b"\r\n", b"")
    assert len(f"\0{user}\0{password}".encode()) == 21  # 28 base64 characters


def test_destination_failures_count_missing_doubled_and_foreign():
    sent = [b"Subject: one\r\n\r\n1\r\n", b"Subject: two\r\n\r\n2\r\n"]
    when = __import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").timezone.utc)
    records = [record_of(i, raw, [], when) for i, raw in enumerate([sent[0], sent[0], b"x\r\n\r\ny\r\n"], 1)]
    dest = MailboxSnapshot(label="d", folders={"INBOX": FolderSnapshot(path=("INBOX",), name="INBOX", messages=records)})
    failures = destination_failures(sent, dest, allowed_missing=0)
    assert failures[0].startswith("1 of the 2 messages the recording sent are not at the destination")
    assert "(e.g. Subject: two)" in failures[0]
    assert "1 messages the recording sent are at the destination more than once" in failures[1]
    assert failures[2] == "1 destination messages are none the recording sent whole"
    assert hashlib.sha256(sent[1]).hexdigest() not in {r.sha256 for r in records}
    assert len(destination_failures(sent, dest, allowed_missing=1)) == 2  # the missing one was skipped


# Bad replay: values -----------------------------------------------------------------------------


def _scenario(tmp_path: Path, source: dict, **more) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"source": source, "destination": {"server": "simulator"}, **more}))
    return path


@pytest.mark.parametrize(
    ("source", "more", "field", "problem"),
    [
        ({"replay": "nowhere.jsonl"}, {}, "source.replay", "nowhere.jsonl: no such transcript"),
        ({"replay": "bad.jsonl"}, {}, "source.replay", "unreadable recording: "),
        ({"replay": "empty"}, {}, "source.replay", "no recorded IMAP or POP3 source session"),
        ({"replay": "x.jsonl", "quirks": ["appendlimit:bytes=10"]}, {}, "source.quirks", "a replayed source is what was recorded"),
        ({"server": "replay"}, {}, "source.replay", "needs the recording's path"),
        ({"server": "simulator", "lenient": True}, {}, "source.lenient", "is for a replayed source"),
        ({"replay": "x.jsonl"}, {"expect": {"identical": True}}, "expect.identical", "compares with a live source"),
        ({"replay": "x.jsonl", "pace": "slow"}, {}, "source.pace", "Input should be 'fast' or 'recorded'"),
    ],
)
def test_bad_replay_values_are_scenario_errors(tmp_path, source, more, field, problem):
    (tmp_path / "bad.jsonl").write_text('{"quirkmail_transcript": 1, "protocol": "imap"}\nnot json\n')
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_scenario(tmp_path, source, **more))
    assert caught.value.file == tmp_path / "s.yaml"
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_a_replayed_destination_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"source": {"server": "simulator"}, "destination": {"replay": "x.jsonl"}}))
    with pytest.raises(ScenarioError, match="a replay plays a source back"):
        load_scenario(path)


def test_a_protocol_that_contradicts_the_recording_is_refused(tmp_path):
    path = _copy(tmp_path, POP3)
    data = yaml.safe_load(path.read_text())
    data["source"]["protocol"] = "imap"
    data["expect"].pop("pop3")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="says imap; the recording is pop3") as caught:
        load_scenario(path)
    assert caught.value.field == "source.protocol"


def test_a_run_recorded_over_starttls_becomes_a_passing_replay_scenario(tmp_path):
    """run --record of a simulator scenario (STARTTLS with the world's CA), then that folder replayed."""
    live = tmp_path / "live.yaml"
    live.write_text(yaml.safe_dump({
        "source": {"server": "simulator", "fixture": {"seed": 4, "messages": 3, "folders": 1}},
        "destination": {"server": "simulator", "user": "bob"},
        "migration": {"options": {"connections": 1}},
    }))
    recorded = run_scenario(load_scenario(live), record_dir=tmp_path / "rec")
    assert recorded.passed and recorded.transcripts
    assert '"tls": "starttls"' in (tmp_path / "rec" / Path(recorded.transcripts[0]).name).read_text()
    path = _scenario(tmp_path, {"replay": "rec"}, migration={"options": {"connections": 1}},
                     expect={"copied_per_run": [3]})
    path.write_text(path.read_text().replace("server: simulator", "server: simulator\n  user: bob"))
    result = run_scenario(load_scenario(path))
    assert result.failures == [] and sum(result.verify.dest_counts.values()) == 3
