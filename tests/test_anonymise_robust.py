"""Any bytes in, as many bytes out, no exception: customers' logs are cut, broken and odd."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transcripts import anon_http, anon_imap, anon_message, anon_pop3, anon_smtp
from transcripts.pseudonyms import Pseudonyms

SAMPLES = [
    b"* 1 FETCH (BODY[] {30}\r\nFrom: a@b.de\r\n\r\nhello",  # cut mid-literal (bye-mid-fetch)
    b"* 2 FETCH (ENVELOPE (NIL \"s\" ((\"N\" NIL \"x\" \"y.de\")) NIL NIL NIL NIL NIL NIL NIL) BODYSTRUCTURE (\"text\")\r\n",
    b"* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe/Gesch&AOQ-ft\"\r\n* LIST () \".\" {5}\r\nA\"B(C\r\n",
    b"a1 LOGIN {5+}\r\nalice {3}\r\npw!\r\na2 AUTHENTICATE PLAIN\r\nAGFsaWNlAHB3\r\n",
    b"+OK\r\nFrom: x@y.de\r\n..\r\n.\r\n-ERR [IN-USE] locked by bob@y.de\r\n",
    b"POST /EWS HTTP/1.1\r\nHost: mail.kunde.de\r\nTransfer-Encoding: chunked\r\nContent-Type: text/xml\r\n\r\n"
    b"5\r\n<a>b<\r\n6\r\n/a>Bob\r\n0\r\n\r\n",
]


@st.composite
def streams(draw):
    base = draw(st.sampled_from(SAMPLES))
    cut = draw(st.integers(0, len(base)))
    noise = draw(st.binary(max_size=40))
    at = draw(st.integers(0, cut))
    return base[:at] + noise + base[at:cut]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_every_anonymiser_keeps_the_length_of_any_bytes(data):
    p = Pseudonyms(1)
    assert len(anon_imap.client(p, data)) == len(data)
    assert len(anon_imap.server(p, data)) == len(data)
    for module in (anon_pop3, anon_smtp, anon_http):
        client, server = module.session(p, data, data)
        assert len(client) == len(data) and len(server) == len(data)
    assert len(anon_message.message(p, data)) == len(data)
    assert len(anon_message.body_only(p, data)) == len(data)


def test_sasl_users_are_rewritten_and_secrets_masked_inside_the_base64():
    import base64

    p = Pseudonyms(1)
    plain = base64.b64encode(b"\x00alice@kunde.de\x00hunter22")
    out = base64.b64decode(anon_imap.sasl(p, b"PLAIN", plain, 0))
    assert out == b"\x00" + p.address(b"alice@kunde.de") + b"\x00********"
    token = base64.b64encode(b"user=alice@kunde.de\x01auth=Bearer ya29.secret\x01\x01")
    out = base64.b64decode(anon_imap.sasl(p, b"XOAUTH2", token, 0))
    assert out == b"user=" + p.address(b"alice@kunde.de") + b"\x01auth=Bearer " + b"*" * 11 + b"\x01\x01"
    assert anon_imap.sasl(p, b"PLAIN", b"****", 0) == b"****", "already masked by the recorder"
    client = b"a1 AUTHENTICATE LOGIN\r\n" + base64.b64encode(b"alice") + b"\r\n" + base64.b64encode(b"pw") + b"\r\n"
    lines = anon_imap.client(p, client).split(b"\r\n")
    assert base64.b64decode(lines[1]) == p.login(b"alice") and base64.b64decode(lines[2]) == b"**"
