"""SOAP 1.1 envelopes and faults in Exchange's shapes (namespaces, prefixes, wording).

Requests are parsed with lxml (no network, no entity expansion); responses are built as lxml
elements and serialised with an XML declaration, as Exchange does.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://schemas.microsoft.com/exchange/services/2006/types"
MNS = "http://schemas.microsoft.com/exchange/services/2006/messages"
ENS = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAP, "m": MNS, "t": TNS}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=True)


def t(tag: str) -> str:
    return f"{{{TNS}}}{tag}"


def m(tag: str) -> str:
    return f"{{{MNS}}}{tag}"


class SoapFault(Exception):
    """A request refused as a whole: the body becomes a SOAP Fault (HTTP 500).

    ``code`` is the Exchange ResponseCode (ErrorSchemaValidation, ErrorInvalidRequest,
    ErrorServerBusy ...); ``message_xml`` the children of ``t:MessageXml`` (e.g. BackOffMilliseconds).
    """

    def __init__(self, code: str, text: str, message_xml: list[etree._Element] | None = None, *, status: int = 500):
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.message_xml = message_xml or []
        self.status = status


@dataclass
class Envelope:
    header: etree._Element | None
    operation: etree._Element  # the single child of s:Body, e.g. m:FindItem

    @property
    def name(self) -> str:
        return etree.QName(self.operation).localname


def parse_envelope(body: bytes) -> Envelope:
    """The request's envelope; SoapFault(ErrorSchemaValidation) for anything that is not one."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (0, 0)
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: " + str(exc.msg),
            _violation(line, col, str(exc.msg)),
        ) from None
    if root.tag != f"{{{SOAP}}}Envelope":
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The root element is {etree.QName(root).localname!r}, "
            "not a SOAP 1.1 Envelope.",
            _violation(root.sourceline or 1, 1, "Expected element 'Envelope' in namespace " + SOAP),
        )
    body_el = root.find(f"{{{SOAP}}}Body")
    ops = [c for c in body_el if isinstance(c.tag, str)] if body_el is not None else []
    if len(ops) != 1:
        raise SoapFault(
            "ErrorSchemaValidation",
            "The request failed schema validation: the SOAP Body must hold exactly one operation.",
            _violation(root.sourceline or 1, 1, "Expected one element in s:Body"),
        )
    return Envelope(root.find(f"{{{SOAP}}}Header"), ops[0])


def _violation(line: int, col: int, text: str) -> list[etree._Element]:
    out = []
    for tag, value in (("LineNumber", line), ("LinePosition", col), ("Violation", text)):
        el = etree.Element(t(tag), nsmap={"t": TNS})
        el.text = str(value)
        out.append(el)
    return out


def server_version_header(version: str) -> etree._Element:
    """``h:ServerVersionInfo`` as Exchange 2016 CU sends it; ``Version`` is the schema name."""
    major, minor, build, rev = _BUILDS.get(version, _BUILDS["Exchange2016"])
    el = etree.Element(
        f"{{{TNS}}}ServerVersionInfo",
        nsmap={"h": TNS},
        MajorVersion=str(major), MinorVersion=str(minor), MajorBuildNumber=str(build),
        MinorBuildNumber=str(rev), Version=version if version != "Exchange2016" else "V2017_07_11",
    )
    return el


# Schema name → (major, minor, build, revision) of a representative build.
_BUILDS = {
    "Exchange2010_SP2": (14, 2, 390, 3),
    "Exchange2013_SP1": (15, 0, 847, 32),
    "Exchange2016": (15, 1, 2507, 6),
    "Exchange2019": (15, 2, 1118, 7),
}


def envelope(body_child: etree._Element, version: str) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    header.append(server_version_header(version))
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    body.append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault_body(fault: SoapFault) -> bytes:
    """The bytes of a SOAP Fault as Exchange sends it (faultcode in the types namespace, detail in
    the errors namespace, MessageXml in the types namespace)."""
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    f = etree.SubElement(body, f"{{{SOAP}}}Fault")
    code = etree.SubElement(f, "faultcode", nsmap={"a": TNS})
    code.text = f"a:{fault.code}"
    string = etree.SubElement(f, "faultstring")
    string.set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    string.text = fault.text
    detail = etree.SubElement(f, "detail")
    rc = etree.SubElement(detail, f"{{{ENS}}}ResponseCode", nsmap={"e": ENS})
    rc.text = fault.code
    msg = etree.SubElement(detail, f"{{{ENS}}}Message", nsmap={"e": ENS})
    msg.text = fault.text
    if fault.message_xml:
        mx = etree.SubElement(detail, t("MessageXml"), nsmap={"t": TNS})
        mx.extend(fault.message_xml)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def back_off_value(milliseconds: int) -> etree._Element:
    el = etree.Element(t("Value"), nsmap={"t": TNS}, Name="BackOffMilliseconds")
    el.text = str(milliseconds)
    return el


def sub(parent: etree._Element, tag: str, text: object | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        el.text = text if isinstance(text, str) else _text(text)
    return el


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def text_of(el: etree._Element | None, tag: str, default: str | None = None) -> str | None:
    if el is None:
        return default
    child = el.find(tag)
    return child.text if child is not None and child.text is not None else default


def xs_int(text: str | None, what: str, default: int | None = None) -> int:
    """An xs:int of the request (``what`` names the element or attribute); a value that is not
    one fails schema validation as a whole, as Exchange's does, in .NET's words."""
    if text is None or (not text.strip() and default is not None):
        if default is None:
            raise SoapFault("ErrorSchemaValidation", f"The request failed schema validation: {what} is missing.")
        return default
    value = text.strip()
    body = value[1:] if value[:1] in "+-" else value
    if not (body.isascii() and body.isdigit() and len(body) <= 10) or not -2**31 <= int(value) < 2**31:
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: The '{what}' value is invalid - The value '{value[:40]}' is "
            "invalid according to its datatype 'http://www.w3.org/2001/XMLSchema:int'.",
        )
    return int(value)


def xs_bool(text: str | None) -> bool:
    """xs:boolean: "true"/"1" (exchangelib sends 1 and 0)."""
    return (text or "").strip() in ("true", "1")
