"""Anonymised recordings of real sessions with the simulators: every size true, no name left."""

from __future__ import annotations

import email
import imaplib
import poplib
import re
import smtplib
from datetime import datetime, timezone

import pytest
from imapclient import IMAPClient

from simulators.fixtures.generator import populate
from simulators.fixtures.spec import FixtureSpec
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import INBOX, Store
from tests.anonymise_support import RecordingProxy
from transcripts.anon_imap import _flatten, _Stream  # the anonymiser's own IMAP framing
from transcripts.anonymise import Anonymiser
from transcripts.format import Chunk, Protocol, Sender, Transcript
from transcripts.pseudonyms import KNOWN_FOLDERS

PASSWORD = "s3cret-Pw"
WORD = re.compile(rb"[A-Za-z\x80-\xff]{5,}")
WHEN = datetime(2022, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
DOTTED = (b"From: Vivienne Falkenrath <vivienne@kunde-gmbh.de>\r\nTo: alice@example.net\r\n"
          b"Subject: Dotted lines\r\n\r\n.hidden line of Falkenrath\r\n..double\r\nend\r\n")


def _store() -> tuple[Store, list[bytes]]:
    store = Store()
    account = store.add_account("alice", PASSWORD)
    populate(account, FixtureSpec(seed=21, messages=14, folders=6, attachments=0.5), load_profile("generic"))
    account.append(INBOX, DOTTED, internaldate=WHEN)
    raws = [item.raw for path in account.folders for item in account.folder(path).messages]
    return store, raws


def vocabulary(raws: list[bytes]) -> set[bytes]:
    """Words people wrote: names, addresses, subjects and text bodies of the mailbox."""
    words: set[bytes] = set()
    for raw in raws:
        msg = email.message_from_bytes(raw)
        for h in ("From", "To", "Cc", "Subject"):
            words |= set(WORD.findall(str(msg.get(h, "")).encode()))
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                words |= set(WORD.findall(part.get_payload(decode=True) or b""))
    return {w.lower() for w in words} - {b"example", b"alice"} | {b"alice"}


def leaks(vocab: set[bytes], original: Transcript, anonymised: Transcript) -> set[bytes]:
    """Vocabulary words in the output, less those the protocol itself says (capabilities, prose)."""
    server = original.sent_by(Sender.SERVER)
    # Header field names, flags and keywords in capitals are protocol, whatever words they contain.
    protocol_words = {w.lower() for w in re.findall(rb"(?m)^[A-Za-z-]+(?=:)|\\[A-Za-z]+|\b[A-Z]{5,}\b", server)
                      for w in WORD.findall(w)}
    protocol_words |= {w.lower() for tag in re.findall(rb"<[^>]*>", server + original.sent_by(Sender.CLIENT))
                       for w in WORD.findall(tag)}  # XML element and attribute names, enumerations
    protocol_words |= {w.encode() for name in KNOWN_FOLDERS for w in name.split()}  # kept on purpose
    for line in server.split(b"\n"):
        if re.match(rb"(\S+ (OK|NO|BAD)|\* (OK|CAPABILITY|FLAGS)|[+-](OK|ERR)|\d{3}[ -])", line):
            protocol_words |= {w.lower() for w in WORD.findall(line)}
    out = (anonymised.sent_by(Sender.CLIENT) + anonymised.sent_by(Sender.SERVER)).lower()
    found = {w.lower() for w in WORD.findall(out)}
    return (vocab & found) - protocol_words


def same_chunking(a: Transcript, b: Transcript) -> None:
    assert len(a.events) == len(b.events)
    for x, y in zip(a.events, b.events):
        assert type(x) is type(y) and x.at == y.at
        if isinstance(x, Chunk):
            assert x.sender is y.sender and len(x.data) == len(y.data)


@pytest.fixture(scope="module")
def imap_session():
    store, raws = _store()
    with SimulatorWorld(store, load_profile("generic")) as world:
        proxy = RecordingProxy(world.start_imap().port, Protocol.IMAP)
        client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=10)
        client.login("alice", PASSWORD)
        for _, _, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search(["ALL"])
            if uids:
                client.fetch(uids, ["ENVELOPE", "BODYSTRUCTURE", "RFC822.SIZE", "BODY.PEEK[]", "INTERNALDATE", "FLAGS",
                                    "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[1]", "BODY.PEEK[]<0.200>"])
        client.select_folder("INBOX")
        client.search(["FROM", "vivienne@kunde-gmbh.de"])
        client.append("INBOX", b"From: Bartholomew Quince <bq@quince-labs.de>\r\nSubject: Quince plans\r\n\r\n"
                               b"Quince body words\r\n", flags=["\\Seen"])
        client.create_folder("Projekte/Übersicht")
        client.select_folder("Projekte/Übersicht")
        client.logout()
        transcript = proxy.transcript()
    vocab = vocabulary(raws) | {b"quince", b"bartholomew", b"projekte", b"bersicht"}
    return transcript, vocab


def test_imap_transcript_keeps_every_size_and_loses_every_name(imap_session):
    original, vocab = imap_session
    anonymised = Anonymiser(seed=4).transcript(original)
    same_chunking(original, anonymised)
    assert anonymised.header.anonymised
    assert not leaks(vocab, original, anonymised)
    server = anonymised.sent_by(Sender.SERVER)
    fetches = re.findall(rb"RFC822\.SIZE (\d+)[^{]*?BODY\[\] \{(\d+)\}\r\n", server)
    assert len(fetches) >= 14
    assert all(size == count for size, count in fetches), "RFC822.SIZE = the literal's count"
    for m in re.finditer(rb"\{(\d+)\}\r\n", server):  # every literal still ends where its count says
        assert server[m.end() + int(m[1]):m.end() + int(m[1]) + 1] in (b" ", b")")
    client = anonymised.sent_by(Sender.CLIENT)
    login = re.search(rb"LOGIN (\S+) \"(\*+)\"", client)
    assert login and len(login[2]) == len(PASSWORD)
    assert anonymised.header.redacted == 1, "the password the proxy left is masked and counted (replay wildcards)"
    # The same person everywhere: the LOGIN user is the owner's local part in the headers.
    assert b"<" + login[1] + b"@example.net>" in server
    assert b"\"INBOX\"" in client and b"\\Sent) \"/\" Sent" in server, "well-known folders stay"
    assert b"Projekte" not in client and b"&" in re.search(rb"CREATE (\S+)", client)[1], \
        "a non-ASCII folder name stays modified UTF-7 of the same length"


def test_imap_anonymised_values_agree_across_envelope_headers_and_search(imap_session):
    original, _ = imap_session
    anonymised = Anonymiser(seed=4).transcript(original)
    server, client = anonymised.sent_by(Sender.SERVER), anonymised.sent_by(Sender.CLIENT)
    searched = re.search(rb"SEARCH FROM (\S+)", client)[1].strip(b'"')
    local, domain = searched.split(b"@")
    assert b'"' + local + b'" "' + domain + b'"' in server, "ENVELOPE's mailbox and host"
    assert b"<" + searched + b">" in server, "the From header"


def test_imap_transcript_is_the_same_however_it_was_chunked(imap_session):
    original, _ = imap_session
    whole = Anonymiser(seed=4).transcript(original)
    server = original.sent_by(Sender.SERVER)
    client = original.sent_by(Sender.CLIENT)
    fine = [Chunk(0.0, Sender.CLIENT, client)] + [Chunk(0.1, Sender.SERVER, server[i:i + 7])
                                                  for i in range(0, len(server), 7)]
    again = Anonymiser(seed=4).transcript(Transcript(original.header, fine))
    assert again.sent_by(Sender.SERVER) == whole.sent_by(Sender.SERVER)
    other = Anonymiser(seed=5).transcript(original)
    assert other.sent_by(Sender.SERVER) != whole.sent_by(Sender.SERVER)


def test_pop3_retr_and_top_keep_octets_and_dot_stuffing():
    store, raws = _store()
    with SimulatorWorld(store, load_profile("generic")) as world:
        proxy = RecordingProxy(world.start_pop3().port, Protocol.POP3)
        pop = poplib.POP3("127.0.0.1", proxy.port, timeout=10)
        pop.user("alice")
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        pop.uidl()
        for n in range(1, count + 1):
            pop.retr(n)
        pop.top(1, 3)
        pop.quit()
        original = proxy.transcript()
    anonymised = Anonymiser(seed=4).transcript(original)
    same_chunking(original, anonymised)
    assert not leaks(vocabulary(raws), original, anonymised)
    server = anonymised.sent_by(Sender.SERVER)
    assert server.count(b"\r\n..") == original.sent_by(Sender.SERVER).count(b"\r\n.."), "stuffed dots kept"
    assert re.search(rb"\r\n\.\.[a-z]{6} [a-z]{4} [a-z]{2} [a-z]{10}\r\n\.\.\.[a-z]{6}\r\n", server, re.I), "the dotted message's lines"
    client = anonymised.sent_by(Sender.CLIENT)
    assert re.search(rb"PASS \*{%d}\r\n" % len(PASSWORD), client) and b"USER alice" not in client
    pop_list = original.sent_by(Sender.SERVER)
    assert re.findall(rb"\+OK (\d+) octets", server) == re.findall(rb"\+OK (\d+) octets", pop_list)


def test_smtp_envelope_and_data_agree_with_the_headers():
    store, _ = _store()
    message = (b"From: Vivienne Falkenrath <vivienne@kunde-gmbh.de>\r\nTo: alice@example.net\r\n"
               b"Subject: Falkenrath invoice\r\n\r\n.leading dot Falkenrath\r\nbody\r\n")
    with SimulatorWorld(store, load_profile("generic")) as world:
        proxy = RecordingProxy(world.start_smtp().port, Protocol.SMTP)
        with smtplib.SMTP("127.0.0.1", proxy.port, timeout=10) as smtp:
            smtp.sendmail("vivienne@kunde-gmbh.de", ["alice@example.net"], message)
        original = proxy.transcript()
    anonymised = Anonymiser(seed=4).transcript(original)
    same_chunking(original, anonymised)
    client = anonymised.sent_by(Sender.CLIENT)
    assert b"Falkenrath" not in client and b"kunde" not in client and b"vivienne" not in client
    sender = re.search(rb"MAIL FROM:<([^>]+)>", client, re.I)[1]
    assert b"<" + sender + b">" in client.lower().split(b"data\r\n", 1)[1], "MAIL FROM = the From header's address"
    assert re.search(rb"\r\n\r\n\.\.[a-z]{7} [a-z]{3} [a-z]{10}\r\n", client, re.I), "the stuffed dot stays"
    assert client.endswith(b"\r\n.\r\nQUIT\r\n")


def test_ews_soap_session_mime_content_and_contacts_lose_names():
    from exchangelib import BASIC, DELEGATE, Account, Configuration, Credentials, FailFast, Version
    from exchangelib.version import EXCHANGE_2016

    store = Store()
    account = store.add_account("alice", PASSWORD)
    profile = load_profile("exchange")
    populate(account, FixtureSpec(seed=23, messages=6, folders=4, attachments=0.5, contacts=3), profile)
    raws = [item.raw for path in account.folders for item in account.folder(path).messages]
    with SimulatorWorld(store, profile) as world:
        handle = world.start_ews()
        proxy = RecordingProxy(handle.port, Protocol.HTTP)
        config = Configuration(service_endpoint=f"http://127.0.0.1:{proxy.port}/EWS/Exchange.asmx",
                               credentials=Credentials("alice", PASSWORD), auth_type=BASIC,
                               version=Version(build=EXCHANGE_2016), retry_policy=FailFast(), max_connections=1)
        ews = Account("alice@example.net", config=config, autodiscover=False, access_type=DELEGATE)
        names = [f.name for f in ews.msg_folder_root.walk()]
        mimes = [m.mime_content for m in ews.inbox.all().only("mime_content", "subject", "sender")]
        people = [c.display_name for c in ews.contacts.all()]
        ews.protocol.close()
        originals = proxy.transcripts()
    assert mimes and people and names
    anonymiser = Anonymiser(seed=4)
    outs = [anonymiser.transcript(t) for t in originals]
    vocab = vocabulary(raws) | {n.lower().encode() for p in people for n in p.split() if len(n) >= 5}
    for original, out in zip(originals, outs):
        same_chunking(original, out)
        assert not leaks(vocab, original, out)
        client = out.sent_by(Sender.CLIENT)
        assert b"Authorization: Basic " in client and PASSWORD.encode() not in client
        server = out.sent_by(Sender.SERVER)
        assert b"alice" not in server and b"RgBhbGljZQ" not in server, "nor in base64 item ids (F\\0alice...)"
    served = b"".join(o.sent_by(Sender.SERVER) for o in outs)
    contents = re.findall(rb"<t:MimeContent[^>]*>([^<]+)</t:MimeContent>", served)
    assert len(contents) == len(mimes)
    import base64
    for content, mime in zip(contents, mimes):
        decoded = base64.b64decode(content)
        assert len(decoded) == len(mime) and email.message_from_bytes(decoded).get_content_type() == \
            email.message_from_bytes(mime).get_content_type()
    assert b"<t:ResponseCode>NoError</t:ResponseCode>" in served or b"ResponseClass=\"Success\"" in served


def _structure(stream: bytes) -> list[tuple]:
    """Each line's tag, command or reply word, and its literals' sizes: what a replay pairs by."""
    s, pos, lines = _Stream(None, stream), 0, []
    while pos < len(stream):
        tag, at = s.first_atom(pos)
        word, at2 = s.first_atom(at)
        toks, pos = s.tokens(at2)
        literals = [t.end - t.start for t in _flatten(toks) if t.kind == "lit"]
        lines.append((tag, word.upper() if not word.isdigit() else b"#", literals))
    return lines


def test_imap_command_and_reply_structure_is_unchanged(imap_session):
    original, _ = imap_session
    anonymised = Anonymiser(seed=4).transcript(original)
    for side in (Sender.CLIENT, Sender.SERVER):
        assert _structure(anonymised.sent_by(side)) == _structure(original.sent_by(side)), side
