"""Fuzzing the EWS simulator's core (EwsService.handle: request bytes in, response out).

Seeds are real requests (tests/fuzz_corpus/ews_requests.json: bodies exchangelib and the EWS
tests sent, a few per operation). They are mutated as XML trees (an element's text or an
attribute set to a huge/negative/empty/garbage value, an element dropped, repeated or renamed) and
as bytes. Property: every request gets HTTP 200 with a SOAP envelope or a SOAP fault with an
Exchange response code — never the catch-all ``ErrorInternalServerError`` that marks a simulator
bug — and the service still answers a valid request afterwards.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from functools import cache
from pathlib import Path

from hypothesis import strategies as st
from lxml import etree

from simulators.ews import EwsService, HttpRequest
from simulators.ews.soap import ENS, SOAP
from simulators.fixtures import FixtureSpec, populate
from simulators.store import Store
from tests.fuzz_profiles import fuzz, profile_named
from tests.fuzz_strategies import mutated

CORPUS = [b.encode() for b in json.loads((Path(__file__).parent / "fuzz_corpus" / "ews_requests.json").read_text())]


def _is_xml(body: bytes) -> bool:
    try:
        etree.fromstring(body)
    except etree.XMLSyntaxError:
        return False
    return True


XML_CORPUS = [b for b in CORPUS if _is_xml(b)]  # the rest are deliberately broken requests
AUTH = {"authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
VALUES = [
    "", " ", "-1", "0", "9" * 5000, "4294967296", "99999999999999999999", "-2147483649", "1e309", "NaN", "abc",
    "\u00e4\u20ac", "2024-13-45T25:61:61Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "P1D", "true",
    "AAAA", "=", "AAMkAGI=", "inbox", "root", "IdOnly", "AllProperties", "Beginning", "<x>", "&amp;",
]
TAGS = sorted({etree.QName(el).text for b in XML_CORPUS for el in etree.fromstring(b).iter() if isinstance(el.tag, str)})
GET_INBOX = (
    '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:GetFolder><m:FolderShape>'
    '<t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/>'
    "</m:FolderIds></m:GetFolder></s:Body></s:Envelope>"
).encode()


@cache
def template() -> Store:
    store = Store()
    account = store.add_account("alice", "secret")
    populate(account, FixtureSpec(messages=6, folders=3, contacts=2, events=2, tasks=2, notes=2,
                                  deleted_items_mixed=1), profile_named("exchange"))
    return store


def fresh_store() -> Store:
    """A copy of the template (populating one takes ~0.2 s; copying ~2 ms). The lock is not
    copyable: the copy gets its own."""
    store = template()
    return copy.deepcopy(store, {id(store.lock): threading.RLock()})


@st.composite
def tree_mutated(draw) -> bytes:
    root = etree.fromstring(draw(st.sampled_from(XML_CORPUS)))
    for _ in range(draw(st.integers(1, 3))):
        elements = [el for el in root.iter() if isinstance(el.tag, str)]
        el = draw(st.sampled_from(elements))
        action = draw(st.sampled_from(["text", "attribute", "drop", "repeat", "rename"]))
        if action == "text":
            el.text = draw(st.sampled_from(VALUES))
        elif action == "attribute" and el.attrib:
            el.set(draw(st.sampled_from(sorted(el.attrib))), draw(st.sampled_from(VALUES)))
        elif action == "drop" and el.getparent() is not None:
            el.getparent().remove(el)
        elif action == "repeat" and el.getparent() is not None:
            el.addnext(copy.deepcopy(el))
        elif action == "rename":
            el.tag = draw(st.sampled_from(TAGS))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


requests = st.one_of(tree_mutated(), tree_mutated(), tree_mutated(), mutated(CORPUS, 2))


def assert_answered(response) -> None:
    assert response.status in (200, 500), response.status
    root = etree.fromstring(response.body)
    assert root.tag == f"{{{SOAP}}}Envelope"
    code = root.findtext(f".//{{{ENS}}}ResponseCode")
    assert code != "ErrorInternalServerError", response.body.decode("utf-8", "replace")[:2000]
    assert (response.status == 500) == (code is not None)


@fuzz("ews-service", 60, bodies=st.lists(requests, min_size=1, max_size=3))
def test_every_request_gets_a_response_or_a_fault_and_the_service_keeps_serving(bodies):
    service = EwsService(fresh_store(), profile_named("exchange"), quirks=[])
    for body in bodies:
        assert_answered(service.handle(HttpRequest("POST", "/EWS/Exchange.asmx", AUTH, body)))
    after = service.handle(HttpRequest("POST", "/EWS/Exchange.asmx", AUTH, GET_INBOX))
    assert after.status == 200, after.body[:500]
