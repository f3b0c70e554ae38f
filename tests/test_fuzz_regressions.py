"""The minimal inputs the fuzzers (tests/test_fuzz_*.py) found, one test each, kept as plain tests
so a regression fails fast and readably without hypothesis."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from exchangelib.errors import ErrorServerBusy

from migrator.backoff import retry_delay
from migrator.collab import throttle
from migrator.dates import parse_rfc5322_date, resolve
from migrator.errors import ProtocolError
from migrator.fetch_parser import parse_fetch
from migrator.replies import login_delay_of
from migrator.imapconn import capability_value
from migrator.sinks.imap import expand_uid_set, parse_tagged
from migrator.sources.pop3 import parse_listing, parse_sizes
from simulators.ews import EwsService, HttpRequest
from simulators.imap import message
from tests.fuzz_profiles import profile_named
from tests.test_ews_engine import envelope
from tests.test_fuzz_ews import AUTH, fresh_store
from tests.test_fuzz_imap import make_session


def run(session, data: bytes) -> bytes:
    return b"".join(o for o in session.receive_data(data) if isinstance(o, bytes))


def test_imap_deeply_nested_list_is_bad_not_a_recursion_error():
    # Found by test_item_parsers_raise_only_syntax_errors: "(" * 1000 overflowed the tokenizer's
    # recursion and the exception escaped receive_data (the connection died).
    session = make_session("generic")
    reply = run(session, b"a NOOP " + b"(" * 1000 + b"\r\n")
    assert reply == b"a BAD Error in IMAP command NOOP: Too deeply nested list\r\n"
    assert run(session, b"b NOOP\r\n").startswith(b"b OK NOOP completed")


def test_imap_huge_or_non_ascii_sequence_number_is_bad():
    # Found by test_item_parsers_raise_only_syntax_errors: "a MOVE 9...9 Sent" (5000 digits) made
    # int() raise ValueError past Python's digit limit; "²" passed str.isdigit().
    session = make_session("generic")
    run(session, b"l LOGIN alice pw\r\ns SELECT INBOX\r\n")
    for number in (b"9" * 5000, b"4294967296", "\u00b2".encode()):
        reply = run(session, b"a FETCH " + number + b" FLAGS\r\n")
        assert reply.startswith(b"a BAD Error in IMAP command FETCH: Invalid messageset"), reply
    assert run(session, b"b FETCH 1 UID\r\n").startswith(b"* 1 FETCH (UID 1)\r\nb OK")


def test_imap_8bit_command_name_is_echoed_not_a_unicode_error():
    # Found by test_session_answers_every_line_and_keeps_serving: "a \x80APABILITY" after login;
    # the reply text held the atom's surrogate escape and encoding it raised out of receive_data.
    session = make_session("generic")
    run(session, b"l LOGIN alice pw\r\n")
    reply = run(session, b"a \x80APABILITY\r\n")
    assert reply == b"a BAD Error in IMAP command \x80APABILITY: Unknown command (0.001 + 0.000 secs).\r\n"
    assert run(session, b"b NOOP\r\n").startswith(b"b OK")


def test_pop3_listing_with_a_huge_message_number_is_skipped_not_a_value_error():
    # Found by test_reply_parsers_give_values_or_protocol_errors: int() of a 5000-digit number.
    assert parse_listing([b"9" * 5000 + b" abc", b"2 xyz"]) == {2: "xyz"}


def test_pop3_malformed_list_line_is_a_protocol_error_naming_it():
    # LIST sizes used to be int(second word): "1 abc" raised ValueError out of Pop3Source.listing.
    assert parse_sizes([b"1 120", b"2 7 extra", b""]) == {1: 120, 2: 7}
    with pytest.raises(ProtocolError, match=r"malformed LIST line b'1 abc'"):
        parse_sizes([b"1 120", b"1 abc"])


@pytest.mark.parametrize("item", [b"BODY[]<" + b"9" * 5000 + b".1>", b"BODY[" + b"9" * 5000 + b"]", b"BODY[]<0.4294967296>"])
def test_imap_huge_section_or_partial_number_is_bad(item):
    # Found by the long run of test_item_parsers_raise_only_syntax_errors: int() of 5000 digits.
    session = make_session("generic")
    run(session, b"l LOGIN alice pw\r\ns SELECT INBOX\r\n")
    reply = run(session, b"a FETCH 1 " + item + b"\r\n")
    assert reply.startswith(b"a BAD Error in IMAP command FETCH: Invalid"), reply


@pytest.mark.parametrize("text", ["5::7", "", "1,,2", "1:4294967295", "9" * 5000])
def test_appenduid_set_malformed_or_huge_is_none_not_a_crash(text):
    # Found by test_append_replies_give_results: "5::7" raised ValueError out of the MULTIAPPEND
    # batch; "1:4294967295" would have built a four-billion-element list.
    assert expand_uid_set(text, 3) is None


@pytest.mark.parametrize("digits, delay", [("9" * 400, 300.0), ("9" * 5000, 300.0), ("0" * 20 + "1500", 1.5)])
def test_throttle_with_a_huge_suggested_backoff_waits_the_longest(digits, delay):
    # Found by test_refusal_texts_give_verdicts_and_bounded_delays: 400 digits overflowed the
    # float division (OverflowError), 5000 digits hit int()'s limit (ValueError).
    assert retry_delay(f"NO Request is throttled. Suggested Backoff Time: {digits} milliseconds", 0) == delay


@pytest.mark.parametrize("head", [
    b'1 (UID 7 INTERNALDATE "4294967295-Jan-2024 10:00:00 +0100" BODY[] {4}',
    b"1 (UID " + b"9" * 5000 + b" BODY[] {4}",
    b"1 (UID 7 BODY[] {" + b"9" * 5000 + b"}",
])
def test_fetch_parser_hands_unreadable_numbers_to_the_full_parser(head):
    # Found by test_fetch_parser_gives_messages_or_none: OverflowError from the INTERNALDATE day,
    # ValueError from int() of 5000 digits. None means "fall back to imapclient's parser".
    assert parse_fetch([(head, b"body"), b")"]) is None


def test_login_delay_with_a_non_ascii_digit_is_unknown():
    # Found while writing the POP3 fuzzer: "²".isdigit() is true but float("²") raises ValueError.
    assert login_delay_of({"LOGIN-DELAY": ["\u00b2"]}) is None
    assert login_delay_of({"LOGIN-DELAY": ["900"]}) == 900.0


RESTRICTED_FIND = (
    '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
    '<m:Restriction>{}</m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/>'
    "</m:ParentFolderIds></m:FindItem>"
)
SIZE_IS = '<t:IsEqualTo><t:FieldURI FieldURI="item:Size"/><t:FieldURIOrConstant><t:Constant Value="{}"/>' \
          "</t:FieldURIOrConstant></t:IsEqualTo>"


@pytest.mark.parametrize("expression", [
    "<t:And><t:Not/></t:And>",  # found by the EWS fuzzer: IndexError on an empty Not
    '<t:Contains><t:FieldURI FieldURI="item:Subject"/></t:Contains>',  # AttributeError: no Constant
    SIZE_IS.format("abc"), SIZE_IS.format("9" * 5000),  # ValueError from int()
    "<t:Not>" * 200 + SIZE_IS.format("1") + "</t:Not>" * 200,  # RecursionError
])
def test_ews_malformed_restriction_is_a_per_folder_error_not_an_internal_error(expression):
    service = EwsService(fresh_store(), profile_named("exchange"), quirks=[])
    body = envelope(RESTRICTED_FIND.format(expression))
    response = service.handle(HttpRequest("POST", "/EWS/Exchange.asmx", AUTH, body))
    assert response.status == 200
    assert b'ResponseClass="Error"' in response.body and b"<m:ResponseCode>ErrorInvalidRequest<" in response.body


def test_ews_create_item_with_an_empty_message_flags_value_fails_schema_validation():
    # Found by the long EWS fuzz run: an empty PR_MESSAGE_FLAGS (0x0E07) Value made int('') raise
    # out of CreateItem (ErrorInternalServerError); Exchange refuses such a request as a whole.
    service = EwsService(fresh_store(), profile_named("exchange"), quirks=[])
    body = envelope(
        '<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:MimeContent CharacterSet="UTF-8">'
        "U3ViamVjdDogeA0KDQpib2R5DQo=</t:MimeContent><t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="
        '"0x0E07" PropertyType="Integer"/><t:Value></t:Value></t:ExtendedProperty></t:Message></m:Items>'
        "</m:CreateItem>")
    response = service.handle(HttpRequest("POST", "/EWS/Exchange.asmx", AUTH, body))
    assert response.status == 500
    assert b"ErrorSchemaValidation</e:ResponseCode>" in response.body
    assert b"The value '' is invalid according to its datatype" in response.body


def test_imap_search_sent_on_a_date_header_with_an_overflowing_day_is_no_match():
    # Found by test_message_views_never_raise: parsedate_to_datetime raised OverflowError for
    # "4294967295 Jan 2024" and SEARCH SENTON answered NO [SERVERBUG]; a zone-less Date was naive.
    session = make_session("generic")
    run(session, b"l LOGIN alice pw\r\n")
    raw = b"Date: Mon, 4294967295 Jan 2024 10:00:00 +0100\r\n\r\nx\r\n"
    run(session, b"a APPEND INBOX {%d}\r\n" % len(raw))
    run(session, raw + b"\r\ns SELECT INBOX\r\n")
    assert run(session, b"b SEARCH SENTON 1-Jan-2024\r\n").startswith(b"* SEARCH 1\r\nb OK")
    assert message.sent_date(b"Date: 1 Jan 99 10:00\r\n\r\n") == datetime(1999, 1, 1, 10, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("text", ["Mon, 4294967295 Jan 2024 10:00:00 +0100", "Fri, 01 Jan 2021 10:00:00 +9999"])
def test_engine_date_with_an_overflowing_day_or_zone_is_impossible_not_a_crash(text):
    # Found by test_date_texts_give_an_instant_or_a_reason: OverflowError from datetime(), and
    # ValueError from timezone() for offsets past 24 h; both escaped resolve() and the copy.
    assert parse_rfc5322_date(text) == (None, f"impossible date {text!r}")
    assert resolve(None, f"Date: {text}\r\n\r\n".encode()).used == "none"


@pytest.mark.parametrize("back_off, delay", [(-1, 0.5), (float("nan"), 0.5), (float("inf"), 300.0), (2.5, 2.5)])
def test_ews_server_busy_with_a_negative_or_nan_back_off_uses_the_doubling_wait(back_off, delay):
    # Found by test_ews_failures_give_bounded_non_negative_delays: BackOffMilliseconds=-1000 gave a
    # delay of -1.0 s, and the throttle's time.sleep(-1.0) raises ValueError.
    exc = ErrorServerBusy("busy", back_off=back_off)
    assert throttle.retry_delay(exc, 0, authenticated_before=True) == delay


@pytest.mark.parametrize("field", [b"\x80UBJECT", b'"\xffSUBJECT"'])
def test_imap_8bit_header_field_name_is_answered_not_an_internal_error(field):
    # Found by the long fuzz run (imap-session, imap-items): the field list was re-encoded as
    # strict UTF-8, so an 8-bit atom raised UnicodeEncodeError and FETCH answered NO [SERVERBUG].
    session = make_session("generic")
    run(session, b"l LOGIN alice pw\r\ns SELECT INBOX\r\n")
    reply = run(session, b"a UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (" + field + b" FROM)])\r\n")
    assert b"[SERVERBUG]" not in reply and b"\r\na OK" in reply, reply


def test_negative_or_huge_capability_value_is_unknown():
    # Found by the long fuzz run: "APPENDLIMIT=-1" gave -1 (every message "too large").
    assert capability_value({"APPENDLIMIT=-1"}, "APPENDLIMIT") is None
    assert capability_value({"APPENDLIMIT=" + "9" * 5000}, "APPENDLIMIT") is None
    assert capability_value({"APPENDLIMIT=35651584"}, "APPENDLIMIT") == 35651584


def test_appenduid_with_a_5000_digit_uid_is_no_uid_not_a_value_error():
    # Found by the long fuzz run: int() of a 5000-digit APPENDUID raised out of parse_tagged.
    result = parse_tagged("OK", [b"[APPENDUID 1700000000 " + b"9" * 5000 + b"] Append completed."])
    assert result.ok and result.uid is None
    assert parse_tagged("OK", [b"[APPENDUID 1700000000 5] Append completed."]).uid == 5
