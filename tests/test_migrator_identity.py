"""migrator.identity: same message → same identity on both servers; distinct messages → distinct."""

from migrator.identity import Identity, IdentityIndex, identity_of, normalise_message_id

BASE = (
    b"Received: from mx by host; Tue, 4 Jan 2005 10:00:00 +0000\r\n"
    b"Message-ID: <ABC@Example.COM>\r\n"
    b"Date: Mon, 3 Jan 2005 10:00:00 +0000\r\n"
    b"From: a@x\r\nTo: b@y\r\nSubject: hello\r\n"
)


def full(headers: bytes, body: bytes = b"body\r\n") -> bytes:
    return headers + b"X-Other: 1\r\n\r\n" + body


def test_header_fields_response_and_full_message_agree():
    # What BODY.PEEK[HEADER.FIELDS (...)] returns: the listed fields in message order + empty line.
    fields = BASE + b"\r\n"
    raw = full(BASE)
    assert identity_of(fields, len(raw)) == identity_of(raw, len(raw))


def test_folding_case_and_line_ends_do_not_matter():
    folded = BASE.replace(b"Subject: hello", b"Subject:\r\n hello").replace(b"\r\n", b"\n")
    assert identity_of(folded, 100).key == identity_of(BASE, 100).key
    assert normalise_message_id("  <ABC@Example.COM> (comment)") == "abc@example.com"


def test_duplicate_message_ids_stay_distinct():
    other = BASE.replace(b"Subject: hello", b"Subject: another message")
    assert identity_of(BASE, 500).key != identity_of(other, 500).key
    # Same headers, clearly different sizes: different messages.
    assert not identity_of(BASE, 500).same_message(identity_of(BASE, 5000))


def test_missing_message_id_is_identified_by_headers():
    no_mid = BASE.replace(b"Message-ID: <ABC@Example.COM>\r\n", b"")
    a = identity_of(no_mid, 300)
    b = identity_of(no_mid.replace(b"To: b@y", b"To: c@z"), 300)
    assert a.key.startswith("-/") and a.key != b.key


def test_size_tolerance_absorbs_crlf_normalisation():
    lf = full(BASE, b"line\n" * 40).replace(b"\r\n", b"\n")
    crlf_size = len(lf.replace(b"\n", b"\r\n"))
    assert identity_of(lf, len(lf)).same_message(identity_of(lf, crlf_size))


def test_index_is_a_multiset():
    ident = identity_of(BASE, 400)
    index = IdentityIndex()
    index.add(ident)
    index.add(Identity(ident.key, 402))
    assert len(index) == 2
    assert index.take(ident) and index.take(ident)
    assert not index.take(ident)  # a third identical source copy is not "present"
    index.add(Identity("other", 400))
    assert not index.take(Identity("other", 9000))
    assert len(index) == 1


def test_identity_round_trips_through_its_text():
    ident = identity_of(BASE, 1234)
    assert Identity.parse(str(ident)) == ident
