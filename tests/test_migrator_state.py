"""migrator.state (checkpoint) and the sink's pure helpers (flag filtering, tagged replies, UID sets)."""

import sqlite3
import threading

from migrator.sinks.imap import filter_flags, parse_tagged, refusal_reason
from migrator.sources.imap import uid_set
from migrator.state import Confirmed, State


def test_checkpoint_round_trip_and_uidvalidity(tmp_path):
    path = tmp_path / "s.sqlite"
    st = State(path, "imap://a@src:143", "imap://b@dst:143")
    st.record("INBOX", 7, [Confirmed(1, "k1#10", "INBOX", 101), Confirmed(2, "k2#20", "INBOX", None)])
    assert st.done("INBOX", 7) == {1: "k1#10", 2: "k2#20"}
    assert st.done("INBOX", 8) == {} and st.stale_uidvalidities("INBOX", 8) == [7]
    st.close()
    # Another destination account is another migration, even in the same file.
    other = State(path, "imap://a@src:143", "imap://c@dst:143")
    assert other.done("INBOX", 7) == {}
    other.close()
    again = State(path, "imap://a@src:143", "imap://b@dst:143")
    again.forget("INBOX", 7)
    assert again.done("INBOX", 7) == {}
    again.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_writers(tmp_path):
    st = State(tmp_path / "s.sqlite", "s", "d")

    def write(folder):
        for i in range(50):
            st.record(folder, 1, [Confirmed(i, f"id{i}#1", folder, i)])

    threads = [threading.Thread(target=write, args=(f"F{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(st.done(f"F{n}", 1)) == 50 for n in range(4))


def test_flags_filtered_by_permanentflags():
    kept, dropped = filter_flags(["\\Seen", "\\Recent", "$Label", "\\Indexed"], ["\\Seen", "\\Flagged"])
    assert kept == ["\\Seen"] and dropped == ["$Label", "\\Indexed"]
    kept, dropped = filter_flags(["\\seen", "$Label"], ["\\Seen", "\\*"])
    assert kept == ["\\seen", "$Label"] and dropped == []


def test_tagged_reply_parsing():
    ok = parse_tagged("OK", [b"[APPENDUID 1700000000 42] Append completed."])
    assert ok.ok and ok.uid == 42
    no = parse_tagged("NO", [b"[OVERQUOTA] Quota exceeded (0.001 + 0.000 secs)."])
    assert (no.ok, no.uid, no.text) == (False, None, "[OVERQUOTA] Quota exceeded.")


def test_uid_sets_are_compact():
    assert uid_set([7, 1, 2, 3, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5" and uid_set([]) == ""


def test_rich_progress_shows_folders_and_counts():
    import io

    from rich.console import Console

    from migrator.progress import RichProgress

    out = io.StringIO()
    progress = RichProgress(Console(file=out, width=120, force_terminal=False))
    progress.start([("INBOX", 3), ("Work/2024", 2), ("Empty", 0)])
    progress.advance("INBOX", 3, 300)
    progress.advance("Work/2024", 1, 100)
    progress.finish()
    text = out.getvalue()
    assert "INBOX" in text and "3/3" in text and "1/2" in text and "4/5" in text
    assert "Empty" not in text


def test_refusal_reasons():
    assert refusal_reason("[TOOBIG] Mail size is larger than the maximum") == "too-large"
    assert refusal_reason("Maximum size of appendable message has been exceeded") == "too-large"
    assert refusal_reason("[OVERQUOTA] Quota exceeded (mailbox for user is full)") == "over-quota"
    assert refusal_reason("Can't save a zero byte message") == "refused"


def test_backoff_policy():
    from migrator.backoff import MAX_ATTEMPTS, retry_delay

    m365 = "Request is throttled. Suggested Backoff Time: 299609 milliseconds"
    assert retry_delay(m365, 0) == 299.609
    assert retry_delay("Suggested Backoff Time: 999999999 milliseconds", 0) == 300.0
    assert [retry_delay("[LIMIT] UID FETCH Rate limit hit.", a) for a in range(3)] == [0.05, 0.1, 0.2]
    assert retry_delay("Success [THROTTLED]", 1) == 0.1
    assert retry_delay("[LIMIT] Rate limit hit.", MAX_ATTEMPTS - 1) is None
    assert retry_delay("Can't save a zero byte message", 0) is None


def test_multiappend_uid_sets_expand_in_order():
    from migrator.sinks.imap import expand_uid_set

    assert expand_uid_set("5:7,9", 4) == [5, 6, 7, 9]
    assert expand_uid_set("12", 1) == [12]
    assert expand_uid_set("5:7,9", 3) is None  # not one UID per appended message
