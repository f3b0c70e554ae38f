"""The message anonymiser: same bytes count, same MIME tree, quirks in place, no original words."""

from __future__ import annotations

import base64
import email
import re
from email.policy import compat32

import pytest

from simulators.fixtures.generator import generate
from simulators.fixtures.spec import FixtureSpec
from simulators.profiles import load_profile
from transcripts import anon_message, anon_text
from transcripts.anonymise import Anonymiser
from transcripts.pseudonyms import Pseudonyms

WORD = re.compile(r"[^\W\d_]{5,}")


def tree(raw: bytes) -> list[tuple]:
    """What must survive: each entity's type, boundary, encoding, disposition and decoded size."""
    msg = email.message_from_bytes(raw, policy=compat32)
    return [
        (part.get_content_type(), part.get_boundary(), part.get("Content-Transfer-Encoding"),
         part.get_content_disposition(), None if part.is_multipart() else len(part.get_payload(decode=True) or b""))
        for part in msg.walk()
    ]


def content_words(raw: bytes) -> set[str]:
    """Words people wrote: names, subject, text parts (decoded), attachment names."""
    msg = email.message_from_bytes(raw, policy=compat32)
    text = [str(email.header.make_header(email.header.decode_header(msg.get(h, "")))) for h in ("From", "To", "Cc", "Subject")]
    for part in msg.walk():
        if part.get_filename():
            text.append(part.get_filename())
        if part.get_content_maintype() == "text":
            body = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
            text.append(re.sub(r"<[^>]*>", " ", body))  # HTML markup is structure, kept
    return {w.lower() for w in WORD.findall(" ".join(text))} - {"example"}


@pytest.fixture(scope="module")
def generated():
    spec = FixtureSpec(seed=11, messages=40, attachments=0.5, bad_dates=5, long_lines=[1200], read_receipts=2,
                       no_message_id=2, duplicate_message_id=1)
    return generate(spec, load_profile("generic"))


def test_fixture_messages_keep_size_and_mime_tree_and_lose_every_word(generated):
    p = Pseudonyms(5)
    for original in generated:
        out = anon_message.message(p, original.raw)
        assert len(out) == len(original.raw)
        assert tree(out) == tree(original.raw), original.case
        leaked = content_words(original.raw) & content_words(out)
        assert not leaked, (original.case, sorted(leaked)[:10])


def test_dates_and_structure_headers_stay_and_threads_stay_linked(generated):
    p = Pseudonyms(5)
    outs = [anon_message.message(p, m.raw) for m in generated]
    for original, out in zip(generated, outs):
        a, b = email.message_from_bytes(original.raw), email.message_from_bytes(out)
        assert [r.rpartition(";")[2] for r in a.get_all("Received", [])] == \
               [r.rpartition(";")[2] for r in b.get_all("Received", [])]
        assert a["Date"] == b["Date"] and a["MIME-Version"] == b["MIME-Version"] and a["User-Agent"] == b["User-Agent"]
    ids = {email.message_from_bytes(m.raw)["Message-ID"]: email.message_from_bytes(o)["Message-ID"]
           for m, o in zip(generated, outs) if email.message_from_bytes(m.raw)["Message-ID"]}
    replies = [(m, o) for m, o in zip(generated, outs) if email.message_from_bytes(m.raw)["In-Reply-To"]]
    assert replies, "the fixture has threads"
    for m, o in replies:
        parent = email.message_from_bytes(m.raw)["In-Reply-To"]
        if parent in ids:
            assert email.message_from_bytes(o)["In-Reply-To"] == ids[parent]
    dup = [m for m in generated if m.case.get("case") == "duplicate-message-id"]
    if dup:
        a, b = (email.message_from_bytes(anon_message.message(p, m.raw))["Message-ID"] for m in dup[:2])
        assert a == b, "messages sharing a Message-ID still share one"


QUIRKY = (
    b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen.mueller@kunde-gmbh.de>\r\n"
    b"To: \"Kr\xc3\xa4mer, Anna\" <anna@kunde-gmbh.de>\r\n"
    b"Subject: Re: AW: Gr\xc3\xbc\xc3\x9fe aus Stuttgart\r\n"
    b"Date: Tue, 1 Feb 2022 10:00:00 +0100\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XyZ\"\r\n"
    b"\r\n"
    b"--XyZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Hallo Anna, das Angebot f=C3=BCr Projekt Falkenstein ist sehr langwierig und =\r\n"
    b"zieht sich hin.\r\n"
    b"--XyZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"bare LF line Falkenstein\nNUL here\x00between words\r\n" + b"x" * 300 + b"Schlusswort\r\n"
    b"Kr\xc3\xa4mer Gr\xc3\xbc\xc3\x9fe\r\n"
    b"--XyZ\r\n"
    b"Content-Type: application/pdf; name=\"Angebot Falkenstein.pdf\"\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''Angebot%20F%C3%A4lkenstein.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + base64.encodebytes(b"%PDF-1.4 secret contract Falkenstein " * 10).replace(b"\n", b"\r\n") +
    b"--XyZ--\r\n"
)


def test_quirky_bytes_stay_in_place():
    out = anon_message.message(Pseudonyms(1), QUIRKY)
    assert len(out) == len(QUIRKY)
    positions = lambda data, pat: [m.start() for m in re.finditer(pat, data)]  # noqa: E731
    assert positions(out, rb"(?<!\r)\n") == positions(QUIRKY, rb"(?<!\r)\n"), "bare LFs where they were"
    assert positions(out, rb"\x00") == positions(QUIRKY, rb"\x00"), "NUL where it was"
    assert positions(out, rb"=\r\n") == positions(QUIRKY, rb"=\r\n"), "soft line breaks where they were"
    assert [len(l) for l in out.split(b"\n")] == [len(l) for l in QUIRKY.split(b"\n")], "every line's length"
    head_end = QUIRKY.index(b"\r\n\r\n")
    assert positions(out[:head_end], rb"[\x80-\xff]") == positions(QUIRKY[:head_end], rb"[\x80-\xff]"), \
        "a raw 8-bit header stays 8-bit (the 8bit-headers quirk)"
    assert out[:head_end].decode("utf-8"), "and stays UTF-8"
    body_8bit = out[out.index(b"bare LF"[:0] + b"Content-Transfer-Encoding: 8bit"):out.index(b"--XyZ\r\nContent-Type: application")]
    assert body_8bit.isascii(), "non-ASCII body text becomes ASCII of the same byte length"
    for word in (b"Falkenstein", b"Anna", b"Stuttgart", b"juergen", b"kunde", b"Angebot", b"Schlusswort", b"secret"):
        assert word.lower() not in out.lower(), word
    for kept in (b"Re: AW: ", b"Tue, 1 Feb 2022 10:00:00 +0100", b"boundary=\"XyZ\"", b".pdf\"", b"utf-8''",
                 b"Content-Transfer-Encoding: quoted-printable"):
        assert kept in out, kept
    assert tree(out) == tree(QUIRKY)
    attachment = email.message_from_bytes(out).get_payload()[2]
    assert attachment.get_payload(decode=True) != email.message_from_bytes(QUIRKY).get_payload()[2].get_payload(decode=True)


def test_same_seed_same_bytes_other_seed_other_bytes():
    a, b, c = (anon_message.message(Pseudonyms(s), QUIRKY) for s in (7, 7, 8))
    assert a == b and a != c


def test_calendar_and_contact_parts_lose_names_and_keep_times():
    ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART:20220201T100000Z\r\n"
           b"SUMMARY:Kickoff Falkenstein\r\nORGANIZER;CN=\"Anna Kraemer\":mailto:anna@kunde-gmbh.de\r\n"
           b"DESCRIPTION:Long text about Falkenstein that is folded over\r\n two lines\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    raw = b"Content-Type: text/calendar; method=REQUEST\r\n\r\n" + ics
    out = anon_message.message(Pseudonyms(2), raw)
    assert len(out) == len(raw)
    assert b"DTSTART:20220201T100000Z\r\n" in out and b"BEGIN:VEVENT" in out and b"ORGANIZER;CN=\"" in out
    assert b"Falkenstein" not in out and b"Anna" not in out and b"kunde" not in out
    assert b"\r\n two" not in out and b"\r\n " in out, "the fold stays where it was, its words rewritten"


def test_base64_text_is_rewritten_through_its_encoding_and_broken_base64_is_scrambled():
    p = Pseudonyms(3)
    text = "Grüße an Falkenstein\r\n".encode() * 20
    good = base64.encodebytes(text).replace(b"\n", b"\r\n")
    out = anon_text.through_base64(good, lambda d: anon_text.text(p, d))
    assert len(out) == len(good) and [len(l) for l in out.split(b"\r\n")] == [len(l) for l in good.split(b"\r\n")]
    decoded = base64.b64decode(out)
    assert len(decoded) == len(text) and b"Falkenstein" not in decoded and decoded.isascii()
    broken = good[:100] + b"!!" + good[102:]
    assert anon_text.through_base64(broken, lambda d: d) is None
    scrambled = anon_text.scramble_base64(p, broken)
    assert len(scrambled) == len(broken) and scrambled[100:102] == b"!!" and scrambled != broken


def test_mapping_names_people_and_folders_only_when_asked():
    a = Anonymiser(seed=9)
    a.message(QUIRKY)
    mapping = a.mapping()
    assert mapping["addresses"]["anna@kunde-gmbh.de"].endswith(".de")
    assert "Re: AW: Grüße aus Stuttgart" in mapping["subjects"]
    assert "hallo" not in mapping["names"], "body words are not in the mapping"


def test_a_forwarded_message_inside_is_anonymised_as_a_message():
    inner = b"From: Vivienne <viv@kunde.de>\r\nSubject: Quarterly Falkenrath\r\nDate: Mon, 3 Jan 2022 09:00:00 +0000\r\n\r\nFalkenrath numbers\r\n"
    raw = (b"From: a@b.de\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
           b"see below\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--b1--\r\n")
    out = anon_message.message(Pseudonyms(4), raw)
    assert len(out) == len(raw) and tree(out) == tree(raw)
    assert b"Falkenrath" not in out and b"kunde" not in out and b"Vivienne" not in out
    assert b"Date: Mon, 3 Jan 2022 09:00:00 +0000\r\n" in out, "the inner message's Date stays too"
