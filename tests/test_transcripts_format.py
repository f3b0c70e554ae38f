"""The transcript file format: exact byte round trips, crash-safe appends, typed errors."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from transcripts import format as tf

STARTED = datetime(2026, 11, 22, 19, 0, 0, tzinfo=timezone.utc)


def _header(**kw) -> tf.Header:
    return tf.Header(protocol=tf.Protocol.IMAP, server="127.0.0.1:1143", started=STARTED, **kw)


def test_bytes_round_trip_exactly_text_and_binary(tmp_path):
    events = [
        tf.Chunk(0.001, tf.Sender.SERVER, b"* OK ready\r\n"),
        tf.Chunk(0.002, tf.Sender.CLIENT, "a1 SELECT \"Entw&APw-rfe\"\r\n".encode()),
        tf.Chunk(0.003, tf.Sender.SERVER, b"* 1 FETCH (BODY[] {4}\r\n\x80\xff\x00\n)\r\n"),
        tf.Mark(0.004, "starttls"),
        tf.Chunk(0.005, tf.Sender.CLIENT, "caf\u00e9\r\n".encode()),
        tf.Mark(0.006, "close", "server"),
    ]
    path = tf.write(tf.Transcript(_header(label="source", redacted=2), events), tmp_path / "s.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[3]).keys() >= {"b64"}, "non-UTF-8 bytes go to b64"
    assert json.loads(lines[5])["text"] == "caf\u00e9\r\n", "UTF-8 stays readable"
    back = tf.read(path)
    assert back.events == events
    assert back.header.label == "source" and back.header.redacted == 2
    assert back.header.started == STARTED
    assert back.sent_by(tf.Sender.CLIENT) == "a1 SELECT \"Entw&APw-rfe\"\r\ncaf\u00e9\r\n".encode()


def test_writer_flushes_each_event_so_a_killed_run_keeps_them(tmp_path):
    path = tmp_path / "live.jsonl"
    writer = tf.TranscriptWriter(path, _header())
    writer.add(tf.Chunk(0.1, tf.Sender.SERVER, b"+OK POP3 ready\r\n"))
    # read while still open, as after a SIGKILL
    assert tf.read(path).events == [tf.Chunk(0.1, tf.Sender.SERVER, b"+OK POP3 ready\r\n")]
    writer.close()
    writer.add(tf.Chunk(0.2, tf.Sender.CLIENT, b"late"))  # after close: ignored, no error
    assert len(tf.read(path).events) == 1


def test_unknown_header_fields_survive_a_rewrite(tmp_path):
    path = tmp_path / "x.jsonl"
    header = {**_header().to_json(), "customer_ticket": "T-1"}
    path.write_text(json.dumps(header) + "\n", encoding="utf-8")
    again = tf.write(tf.read(path), tmp_path / "y.jsonl")
    assert json.loads(again.read_text().splitlines()[0])["customer_ticket"] == "T-1"


@pytest.mark.parametrize(
    ("lines", "line", "cause"),
    [
        ([], 1, "empty file"),
        (['{"quirkmail_transcript": 2}'], 1, "version 1"),
        (['{"quirkmail_transcript": 1, "protocol": "gopher", "started": "2026-01-01T00:00:00+00:00"}'], 1, "unknown protocol 'gopher'"),
        (['{"quirkmail_transcript": 1, "protocol": "imap", "started": "yesterday"}'], 1, "ISO 8601"),
        (['{"quirkmail_transcript": 1, "protocol": "imap", "started": "2026-01-01T00:00:00"}'], 1, "no time zone"),
        (["HEADER", ], 1, "not JSON"),
        (["@HDR", '{"t": 0, "from": "proxy", "text": "x"}'], 2, "'from' must be"),
        (["@HDR", '{"t": -1, "from": "server", "text": "x"}'], 2, "'t' must be"),
        (["@HDR", '{"t": 0, "from": "server", "b64": "%%%"}'], 2, "not base64"),
        (["@HDR", '{"t": 0, "from": "client"}'], 2, "'text', 'b64' or 'mark'"),
        (["@HDR", "[1, 2]"], 2, "JSON object"),
    ],
)
def test_bad_files_name_the_line_and_the_cause(lines, line, cause):
    header = json.dumps(_header().to_json())
    lines = [header if x == "@HDR" else x for x in lines]
    with pytest.raises(tf.TranscriptError) as err:
        tf.parse_lines(lines, "customer.jsonl")
    assert err.value.line == line
    assert cause in err.value.cause
    assert str(err.value).startswith(f"customer.jsonl, line {line}: ")


def test_sniffing_tells_a_transcript_from_a_raw_log(tmp_path):
    ours = tf.write(tf.Transcript(_header()), tmp_path / "ours.jsonl")
    raw = tmp_path / "dovecot.in"
    raw.write_bytes(b"a1 LOGIN x y\r\n")
    assert tf.looks_like_transcript(ours)
    assert not tf.looks_like_transcript(raw)
    assert not tf.looks_like_transcript(tmp_path / "missing")
