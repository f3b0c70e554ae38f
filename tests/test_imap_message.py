"""simulators.imap.message: bytes in, IMAP bytes out.

Expected values were captured from Dovecot 2.3.19 for the same messages (the peer test
re-checks them live); they are written out here so a regression shows without a peer.
"""

from __future__ import annotations

import re

import pytest

from simulators.imap import message as m
from tests.test_imap_message_samples import SAMPLES, nested


def addr(name: str, mailbox: str, domain: str) -> bytes:
    return f'({name} NIL "{mailbox}" "{domain}")'.encode()


# -- ENVELOPE ------------------------------------------------------------------------------------


def test_envelope_simple_all_fields():
    assert m.envelope(SAMPLES["simple"]) == (
        b'("Tue, 1 Feb 1994 10:11:12 +0100" "Hello there" (("Alice Example" NIL "alice" "example.com")) '
        b'((NIL NIL "alice" "example.com")) ((NIL NIL "replies" "example.com")) '
        b'(("Bob" NIL "bob" "example.org")(NIL NIL "carol" "example.net")) ((NIL NIL "dave" "example.net")) '
        b'((NIL NIL "eve" "example.net")) "<parent@example.com>" "<simple-1@example.com>")'
    )


def test_envelope_sender_and_reply_to_default_to_from():
    env = m.envelope(SAMPLES["alternative"])
    shop = b'(("Shop, Inc." NIL "news" "shop.example"))'
    assert env.count(shop) == 3
    assert env.endswith(b' NIL NIL NIL "<alt-1@shop.example>")')


def test_envelope_keeps_rfc2047_words_encoded():
    env = m.envelope(SAMPLES["encoded_words"])
    assert b'"=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?= and more"' in env
    assert b'(("=?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?=" NIL "juergen" "example.de"))' in env


def test_envelope_groups():
    env = m.envelope(SAMPLES["groups"])
    assert b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))' in env
    assert (
        b'((NIL NIL "Team" NIL)(NIL NIL "anna" "example.com")("Ben B." NIL "ben" "example.com")'
        b'(NIL NIL NIL NIL)(NIL NIL "solo" "example.com"))'
    ) in env


def test_envelope_missing_headers_is_all_nil():
    assert m.envelope(SAMPLES["missing_headers"]) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_eight_bit_and_quotes_become_literals():
    env = m.envelope(SAMPLES["eight_bit_header"])
    assert b"{22}\r\nGr\xc3\xbc\xc3\x9fe ohne Kodierung (({4}\r\nZo\xc3\xab NIL" in env
    env = m.envelope(SAMPLES["awkward_quoting"])
    # Dovecot 2.3.19 sends a literal for any '"' or '\' rather than escaping it
    assert b'{15}\r\n"quoted" \\ back' in env
    assert b'(({13}\r\nDoe, "Johnny" NIL "john.doe" "example.com"))' in env
    assert b'({10}\r\nback\\slash NIL "bs" "example.com")' in env
    assert b'((NIL NIL "bare" "example.com")' in env


def test_envelope_folding_and_whitespace():
    env = m.envelope(SAMPLES["folded_and_long"])
    # subjects are cleaned "for humans" (a literal because it changed); other strings lose CRLF only
    assert b'{24}\r\na subject that is folded' in env
    assert env.endswith(b'NIL NIL NIL " <folded-1@example.com>")')
    assert b'((NIL NIL "one" "example.com")(NIL NIL "two" "example.com"))' in env


def test_envelope_odd_addresses():
    assert m.envelope(SAMPLES["odd_addresses"]) == (
        b'("Tue, 1 Feb 1994 10:11:12 +0100" {13}\r\ntabbed spaces ((NIL NIL "foo" "MISSING_DOMAIN")) '
        b'((NIL NIL "foo" "MISSING_DOMAIN")) ((NIL NIL "foo" "MISSING_DOMAIN")) NIL '
        b'((NIL NIL "John Doe" "example.com")("Bob Smith" NIL "bob" "example.com")'
        b'(NIL "@route1,@route2" "r" "example.com")) NIL NIL NIL)'
    )


def test_envelope_repeated_headers_last_string_wins_addresses_add_up():
    assert m.envelope(SAMPLES["repeated_headers"]) == (
        b'(NIL "second" ((NIL NIL "one" "example.com")(NIL NIL "two" "example.com")) '
        b'((NIL NIL "one" "example.com")(NIL NIL "two" "example.com")) '
        b'((NIL NIL "one" "example.com")(NIL NIL "two" "example.com")) NIL NIL NIL NIL "<b@x>")'
    )


def test_envelope_address_edges():
    env = m.envelope(SAMPLES["address_edges"])
    assert b'{40}\r\nRe: [list] =?utf-8?b?w6TDtsO8?= and tabs ' in env
    assert b'((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) ((NIL NIL "Group One" NIL)' in env  # Reply-To: <>
    assert b'(("comment" NIL "foo" "bar")(NIL NIL "x" "y")("just text" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))' in env
    assert env.endswith(b' NIL "<a@b> <c@d>" NIL)')


# -- BODYSTRUCTURE ---------------------------------------------------------------------------------


def test_bodystructure_simple_text():
    raw = SAMPLES["simple"]
    assert m.bodystructure(raw) == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 45 4 NIL NIL NIL NIL)'
    assert m.bodystructure(raw, extended=False) == b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 45 4)'


def test_bodystructure_alternative():
    assert m.bodystructure(SAMPLES["alternative"]) == (
        b'(("text" "plain" ("charset" "UTF-8") NIL NIL "quoted-printable" 46 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 56 1 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "b1_alt") NIL NIL NIL)'
    )
    assert m.bodystructure(SAMPLES["alternative"], extended=False) == (
        b'(("text" "plain" ("charset" "UTF-8") NIL NIL "quoted-printable" 46 0)'
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 56 1) "alternative")'
    )


def test_bodystructure_mixed_attachment_extension_data():
    assert m.bodystructure(SAMPLES["mixed_attachment"]) == (
        b'((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "iso-8859-1") NIL NIL "quoted-printable" 21 0 NIL NIL NIL NIL) '
        b'"alternative" ("boundary" "inner") NIL NIL NIL)'
        b'("application" "pdf" ("name" "report 2021.pdf") "<part2@example.org>" "The report" "base64" 34 '
        b'"Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "report 2021.pdf" "size" "12")) ("en" "de") '
        b'"http://example.org/report.pdf")'
        b'("image" "png" ("name*" "utf-8\'\'%E2%82%AC.png") NIL NIL "7bit" 12 NIL ("inline" NIL) NIL NIL) '
        b'"mixed" ("boundary" "XYZ" "foo" "bar") NIL NIL NIL)'
    )


def test_bodystructure_nested_rfc822_has_envelope_body_and_lines():
    bs = m.bodystructure(SAMPLES["nested_rfc822"])
    assert bs.startswith(b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 18 1 NIL NIL NIL NIL)')
    assert (
        b'("message" "rfc822" NIL NIL NIL "7bit" 352 ("Tue, 1 Feb 1994 10:11:12 +0100" "Hello there" '
    ) in bs
    assert (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 0 NIL NIL NIL NIL)'
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 17 0 NIL NIL NIL NIL) "alternative" '
        b'("boundary" "deep") NIL NIL NIL) 17 NIL ("inline" NIL) NIL NIL)'
    ) in bs


def test_bodystructure_keeps_case_of_types_and_parameters():
    assert m.bodystructure(SAMPLES["awkward_quoting"]) == (
        b'("TEXT" "PLAIN" ("CHARSET" "ISO-8859-1" "Format" "Flowed") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'
    )


def test_bodystructure_top_level_message_rfc822():
    assert m.bodystructure(SAMPLES["top_level_rfc822"]) == (
        b'("message" "rfc822" NIL NIL NIL "7bit" 63 (NIL "inner subject" ((NIL NIL "inner" "example.com")) '
        b'((NIL NIL "inner" "example.com")) ((NIL NIL "inner" "example.com")) NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)'
    )


def test_bodystructure_without_mime_headers_ignores_content_fields():
    # no MIME-Version and no Content-Type: Content-Transfer-Encoding/Description are forgotten
    assert m.bodystructure(SAMPLES["odd_addresses"]) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'
    )


def test_bodystructure_multipart_without_boundary_has_one_empty_part():
    assert m.bodystructure(SAMPLES["multipart_no_boundary"]) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)'
    )


def test_bodystructure_rfc2231_continuations():
    assert b'("name" "ab" "title*" "us-ascii\'en\'x%41" "charset" "us-ascii")' in m.bodystructure(
        SAMPLES["rfc2231_params"]
    )


def test_bodystructure_digest_default_is_message_rfc822():
    assert m.bodystructure(SAMPLES["digest"]).startswith(
        b'(("message" "rfc822" NIL NIL NIL "7bit" 39 (NIL "digest one" '
    )


def test_bodystructure_bare_lf_counts_the_stored_bytes():
    # Dovecot would say 18 (it stores CRLF); we serve the raw bytes, so sizes are of those
    assert m.bodystructure(SAMPLES["bare_lf"]) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 17 1 NIL NIL NIL NIL)'
        b'("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 11 0 NIL NIL NIL NIL) "mixed" '
        b'("boundary" "lfb") NIL NIL NIL)'
    )


def test_nesting_stops_at_dovecots_depth_limit():
    bs = m.bodystructure(SAMPLES["deep_rfc822"])
    assert bs.count(b'("message" "rfc822"') == 99
    assert re.search(rb'\("application" "octet-stream" NIL NIL NIL "7bit" \d+ NIL NIL NIL NIL\) \d+ ', bs)
    # far beyond the limit: no RecursionError, just a deep but finite structure
    assert m.bodystructure(nested(5000, "multipart")).count(b'"mixed"') == 99


def test_nested_boundary_that_extends_the_outer_one():
    # "--AB" must not cut the inner multipart at "--ABC" lines: the innermost boundary wins
    raw = SAMPLES["rfc2231_params"]
    assert m.body_section(raw, (1, 1), None) == b"x"
    assert m.body_section(raw, (2,), None) == b"y"


# -- BODY[section] ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, part, text, expected",
    [
        ("simple", (), "TEXT", b"Hello Bob,\r\n\r\nthis is a plain message.\r\nBye\r\n"),
        ("simple", (1,), None, b"Hello Bob,\r\n\r\nthis is a plain message.\r\nBye\r\n"),
        ("simple", (1, 1), None, b""),
        ("simple", (2,), None, b""),
        ("alternative", (1,), None, b"Thanks for your order =E2=80=94 it ships soon."),
        ("alternative", (1, 1), None, b"Thanks for your order =E2=80=94 it ships soon."),
        ("alternative", (1, 1, 1), None, b""),
        ("alternative", (2,), "MIME", b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'),
        ("alternative", (1,), "HEADER", b""),
        ("mixed_attachment", (1, 2), None, b"<b>see attachment</b>"),
        ("mixed_attachment", (2,), None, b"JVBERi0xLjQKJcfs\r\nj6IKMSAwIG9iago="),
        ("mixed_attachment", (3,), None, b"iVBORw0KGgo="),
        ("mixed_attachment", (4,), None, b""),
        ("nested_rfc822", (2,), "HEADER", None),  # checked below
        ("nested_rfc822", (2, 1), None, b"inner plain"),
        ("nested_rfc822", (2, 2), "MIME", b"Content-Type: text/html\r\n\r\n"),
        ("nested_rfc822", (2,), "TEXT", None),
        ("top_level_rfc822", (1,), None, b"From: inner@example.com\r\nSubject: inner subject\r\n\r\ninner body\r\n"),
        ("top_level_rfc822", (1, 1), None, b"inner body\r\n"),
        ("top_level_rfc822", (1,), "HEADER", b"From: inner@example.com\r\nSubject: inner subject\r\n\r\n"),
        ("top_level_rfc822", (1, 1), "MIME", b"From: inner@example.com\r\nSubject: inner subject\r\n\r\n"),
        ("bare_lf", (1,), None, b"line one\nline two"),
        ("bare_lf", (2,), "MIME", b"Content-Type: text/plain; charset=utf-8\n\n"),
    ],
)
def test_body_section_parts(name, part, text, expected):
    raw = SAMPLES[name]
    got = m.body_section(raw, part, text)
    if expected is not None:
        assert got == expected
    else:  # the embedded message's own header/text, sliced from the original bytes
        assert got and got in raw
        start = raw.index(b"Date: Tue, 1 Feb 1994")
        if text == "HEADER":
            assert raw.startswith(got, start) and got.endswith(b"\r\n\r\n")
        else:
            assert got.startswith(b"--deep\r\n") and got.endswith(b"--deep--\r\n")


def test_body_section_whole_message_is_the_same_object_bytes():
    raw = SAMPLES["mixed_attachment"]
    assert m.body_section(raw, (), None) == raw
    header = m.body_section(raw, (), "HEADER")
    assert raw.startswith(header) and header.endswith(b"\r\n\r\n")
    assert header + m.body_section(raw, (), "TEXT") == raw


def test_body_section_header_fields():
    raw = SAMPLES["folded_and_long"]
    assert m.body_section(raw, (), "HEADER.FIELDS", ("subject", "FROM")) == (
        b"From: folded@example.com\r\nSubject: a subject that\r\n is folded\r\n\r\n"
    )
    assert m.body_section(raw, (), "HEADER.FIELDS", ("X-None",)) == b"\r\n"
    assert m.body_section(raw, (), "HEADER.FIELDS", (b"from",)) == b"From: folded@example.com\r\n\r\n"
    not_fields = m.body_section(raw, (), "header.fields.not", ("date", "to", "subject", "message-id", "content-type"))
    assert not_fields == b"From: folded@example.com\r\n\r\n"


def test_body_section_header_fields_of_embedded_message():
    raw = SAMPLES["nested_rfc822"]
    assert m.body_section(raw, (2,), "HEADER.FIELDS", ("Subject",)) == b"Subject: Hello there\r\n\r\n"


def test_body_section_errors():
    with pytest.raises(m.SectionError, match="MIME needs a part"):
        m.body_section(SAMPLES["simple"], (), "MIME")
    with pytest.raises(m.SectionError, match="unknown section"):
        m.body_section(SAMPLES["simple"], (), "BODY")
    with pytest.raises(m.SectionError, match="field list"):
        m.body_section(SAMPLES["simple"], (), "TEXT", ("Subject",))


def test_partial_messages_do_not_crash():
    # truncated mid-part, no closing boundary, header only, empty message
    for raw in (
        SAMPLES["mixed_attachment"][:400],
        b"Subject: only a header",
        b"",
        b"\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\n",
    ):
        assert m.envelope(raw).startswith(b"(")
        assert m.bodystructure(raw).startswith(b"(")
        m.body_section(raw, (1,), None)
        m.body_section(raw, (1, 1), "MIME")


# -- quoting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, b"NIL"),
        (b"", b'""'),
        (b"plain", b'"plain"'),
        (b'say "hi"', b'{8}\r\nsay "hi"'),
        (b"a\\b", b"{3}\r\na\\b"),
        ("ä".encode(), b"{2}\r\n\xc3\xa4"),
    ],
)
def test_nstring(value, expected):
    assert m.nstring(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"ok subject", b'"ok subject"'),
        (b"  padded  ", b"{6}\r\npadded"),
        (b"tab\there", b"{8}\r\ntab here"),
        (b"   ", b'""'),
        (b"nul\x00byte", b"{8}\r\nnul\x80byte"),
    ],
)
def test_string_for_humans(value, expected):
    assert m.string_for_humans(value) == expected


# -- decoded views for SEARCH ----------------------------------------------------------------------


def test_header_values_decode_rfc2047():
    raw = SAMPLES["encoded_words"]
    assert m.header_values(raw, "subject") == ["Grüße aus München and more"]
    assert m.header_values(raw, "FROM") == ["Jürgen Müller <juergen@example.de>"]
    assert m.header_values(raw, "X-Missing") == []


def test_body_text_decodes_transfer_encodings_and_skips_attachments():
    text = m.body_text(SAMPLES["alternative"])
    assert "Thanks for your order — it ships soon." in text
    text = m.body_text(SAMPLES["mixed_attachment"])
    assert "see attachment" in text and "JVBERi0" not in text
    assert "Viele Grüße aus München!" in m.body_text(SAMPLES["encoded_words"])


def test_sent_date():
    assert m.sent_date(SAMPLES["simple"]).isoformat() == "1994-02-01T10:11:12+01:00"
    assert m.sent_date(SAMPLES["missing_headers"]) is None
    assert m.sent_date(b"Date: not a date\r\n\r\n") is None


def test_parse_is_cached_per_bytes_value():
    raw = SAMPLES["nested_rfc822"]
    assert m.parse(raw) is m.parse(raw)


def test_mangled_messages_never_raise():
    """Seeded mutations of every sample (cuts, dropped/duplicated lines, stray bytes): the
    functions answer something well-formed and never raise."""
    import random

    rng = random.Random(2021)
    stray = [b"\r", b"\n", b"\x00", b"\xff", b"--", b'"', b"(", b";", b"<", b"=?", b":", b"\t"]
    for raw in SAMPLES.values():
        for _ in range(30):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 4)):
                if not data:
                    break
                at = rng.randrange(len(data))
                choice = rng.random()
                if choice < 0.4:
                    data[at:at] = rng.choice(stray)
                elif choice < 0.7:
                    del data[at : at + rng.randint(1, 20)]
                else:
                    del data[at:]
            mangled = bytes(data)
            for result in (m.envelope(mangled), m.bodystructure(mangled), m.bodystructure(mangled, extended=False)):
                assert result.startswith(b"(") and result.endswith(b")")
            for part in ((), (1,), (2,), (1, 1), (2, 1), (3, 2, 1)):
                m.body_section(mangled, part, None)
                m.body_section(mangled, part, "HEADER.FIELDS", ("From",))
                if part:
                    m.body_section(mangled, part, "MIME")
            m.body_text(mangled)
            m.full_text(mangled)
            m.sent_date(mangled)
