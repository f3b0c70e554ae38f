"""Sample messages shared by the IMAP message/search tests (data only; no tests live here).

Each sample is the exact bytes a client would APPEND. They cover the shapes a migration meets:
plain text, alternatives, attachments, nested message/rfc822, RFC 2047 words, group addresses,
missing headers, bare LF, 8-bit headers and awkward quoting.
"""

from __future__ import annotations


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


SIMPLE = crlf(
    """Date: Tue, 1 Feb 1994 10:11:12 +0100
From: Alice Example <alice@example.com>
Sender: alice@example.com
Reply-To: replies@example.com
To: Bob <bob@example.org>, carol@example.net
Cc: dave@example.net
Bcc: eve@example.net
Subject: Hello there
Message-ID: <simple-1@example.com>
In-Reply-To: <parent@example.com>

Hello Bob,

this is a plain message.
Bye
"""
)

ALTERNATIVE = crlf(
    """Date: Wed, 02 Mar 2011 08:00:00 -0500
From: "Shop, Inc." <news@shop.example>
To: customer@example.com
Subject: Your order
Message-ID: <alt-1@shop.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1_alt"

This is a multi-part message in MIME format.

--b1_alt
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Thanks for your order =E2=80=94 it ships soon.
--b1_alt
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 7bit

<html><body><p>Thanks for your order</p></body></html>

--b1_alt--
epilogue text
"""
)

MIXED_ATTACHMENT = crlf(
    """Date: Thu, 10 Jun 2021 17:30:00 +0000
From: Bob <bob@example.org>
To: alice@example.com
Subject: Report attached
Message-ID: <mixed-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=XYZ; foo=bar

--XYZ
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain

see attachment
--inner
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<b>see attachment</b>
--inner--

--XYZ
Content-Type: application/pdf; name="report 2021.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="report 2021.pdf"; size=12
Content-ID: <part2@example.org>
Content-Description: The report
Content-Language: en, de
Content-Location: http://example.org/report.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

JVBERi0xLjQKJcfs
j6IKMSAwIG9iago=
--XYZ
Content-Type: image/png; name*=utf-8''%E2%82%AC.png
Content-Disposition: inline

iVBORw0KGgo=
--XYZ--
"""
)

NESTED_RFC822 = crlf(
    """Date: Fri, 11 Jun 2021 09:00:00 +0200
From: Carol <carol@example.net>
To: alice@example.com
Subject: Fwd: Hello there
Message-ID: <fwd-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=us-ascii

Forwarding this.

--outer
Content-Type: message/rfc822
Content-Disposition: inline

Date: Tue, 1 Feb 1994 10:11:12 +0100
From: Alice Example <alice@example.com>
To: Bob <bob@example.org>
Subject: Hello there
Message-ID: <simple-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="deep"

--deep
Content-Type: text/plain

inner plain
--deep
Content-Type: text/html

<p>inner html</p>
--deep--

--outer--
"""
)

ENCODED_WORDS = crlf(
    """Date: Sat, 12 Jun 2021 12:00:00 +0000
From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>
To: =?ISO-8859-1?Q?Andr=E9?= <andre@example.fr>
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?= and more
Message-ID: <enc-1@example.de>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Viele Grüße aus München!
"""
)

GROUPS = crlf(
    """Date: Sun, 13 Jun 2021 12:00:00 +0000
From: Announcer <announce@example.com>
To: undisclosed-recipients:;
Cc: Team: anna@example.com, "Ben B." <ben@example.com>;, solo@example.com
Subject: Groups
Message-ID: <grp-1@example.com>

group body
"""
)

MISSING_HEADERS = crlf(
    """X-Note: nothing else here

just a body line
"""
)

BARE_LF = (
    b"Date: Mon, 14 Jun 2021 08:00:00 +0000\n"
    b"From: lf@example.com\n"
    b"To: alice@example.com\n"
    b"Subject: bare LF\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=lfb\n"
    b"\n"
    b"--lfb\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"line one\n"
    b"line two\n"
    b"--lfb\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"\n"
    b"second part\n"
    b"--lfb--\n"
)

EIGHT_BIT_HEADER = crlf(
    """Date: Tue, 15 Jun 2021 08:00:00 +0000
From: Zoë <zoe@example.com>
To: alice@example.com
Subject: Grüße ohne Kodierung
Message-ID: <8bit-1@example.com>
Content-Type: text/plain; charset=utf-8

Grüße
"""
)

AWKWARD_QUOTING = crlf(
    """Date: 16 Jun 2021 08:00 GMT
From: "Doe, \\"Johnny\\"" <john.doe@example.com>
To: <bare@example.com>, "back\\\\slash" <bs@example.com>
Subject: "quoted" \\ back
Message-ID: <quote-1@example.com>
Content-Type: TEXT/PLAIN; CHARSET=ISO-8859-1; Format=Flowed

body
"""
)

TOP_LEVEL_RFC822 = crlf(
    """Date: Wed, 17 Jun 2021 08:00:00 +0000
From: wrapper@example.com
Subject: wrapped
Content-Type: message/rfc822

From: inner@example.com
Subject: inner subject

inner body
"""
)

FOLDED_AND_LONG = crlf(
    """Date: Thu, 18 Jun 2021 08:00:00 +0000
From: folded@example.com
To: one@example.com,
 two@example.com
Subject: a subject that
 is folded
Message-ID:
 <folded-1@example.com>
Content-Type: text/plain;
	charset="us-ascii";
	format=flowed

short body
no final newline"""
)

ODD_ADDRESSES = crlf(
    """From: foo
To:
Cc: "John Doe"@example.com, bob@example.com (Bob Smith), <@route1,@route2:r@example.com>
Subject:	tabbed   spaces  
Content-Transfer-Encoding: base64
Content-Description: folded
 description
Date: Tue, 1 Feb 1994
 10:11:12 +0100

body
"""
)

MULTIPART_NO_BOUNDARY = crlf(
    """From: a@b.c
Content-Type: multipart/mixed

no boundary body
"""
)

RFC2231_PARAMS = crlf(
    """From: a@b.c
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=AB

--AB
Content-Type: multipart/alternative; boundary=ABC

--ABC
Content-Type: text/plain

x
--ABC--
--AB
Content-Type: text/plain; name*0="a"; name*1="b"; title*0*=us-ascii'en'x; title*1*=%41

y
--AB--
"""
)

DIGEST = crlf(
    """From: a@b.c
MIME-Version: 1.0
Content-Type: multipart/digest; boundary=D

--D

From: x@y.z
Subject: digest one

one
--D
Content-Type: text/plain

two
--D--
"""
)

EDGE_STRUCTURE = crlf(
    """From: Alice (the boss) <alice@example.com>
To: a@example.com, , Undisclosed, "" <empty@example.com>
Subject:
Date: Mon, 21 Jun 2021 08:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=_outer"

preamble line
--=_outer
Content-Type: multipart/alternative; boundary="=_inner"

--=_inner
Content-Type: text/plain

--=_inner--
inner epilogue
--=_outer
Content-Type: message/rfc822

From: layer1@example.com
Subject: layer one
Content-Type: message/rfc822

From: layer2@example.com
Subject: layer two

deepest body
--=_outer
Content-Type: text/plain; charset=utf-8
Content-Disposition: INLINE
Content-Language: fr
Content-Location:
 http://example.com/a
Content-Description: =?utf-8?q?caf=C3=A9?=

last
--=_outer--
outer epilogue
"""
)

NO_HEADER = crlf(
    """
body of a message without any header
"""
)

NUL_IN_HEADER = b"From: nul@example.com\r\nSubject: a\x00b\r\n\r\nbody\r\n"

REPEATED_HEADERS = crlf(
    """Subject: first
Subject: second
From: one@example.com
From: two@example.com
Message-ID: <a@x>
Message-ID: <b@x>
Content-Type: text/plain; charset=a
Content-Type: text/html; charset=b

x
"""
)

ADDRESS_EDGES = crlf(
    """From: "Last, First" <first.last@example.com>, =?utf-8?q?J=C3=B6rg?= <j@example.com>
To: Group One: a@b.c;, Group Two:;
Cc: foo@bar (comment) , <x@y>, just text
Reply-To: <>
Subject: Re: [list] =?utf-8?b?w6TDtsO8?=	and	tabs
In-Reply-To: <a@b> <c@d>

x
"""
)

SLOPPY_MIME = crlf(
    """From: a@b.c
MIME-Version: 1.0
Content-Type: Multipart/Mixed; BOUNDARY="with space"

--with space
Content-Type: text/plain; format; charset=utf-8;
Content-Transfer-Encoding: Base64 (comment)

eA==
--with space
Content-Type: text

no subtype
--with space
Content-Type: text/plain (plain text); charset="us-ascii" (ascii)
Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC.txt

abc
--with space
Content-Type: message/rfc822

Subject: inner
Content-Transfer-Encoding: quoted-printable
Content-Description: not MIME here

inner body
--with space--
"""
)


def nested(levels: int, kind: str) -> bytes:
    """A message nested ``levels`` deep in multiparts or message/rfc822 parts (Dovecot stops at 100)."""
    raw = b"From: deep@example.com\r\nMIME-Version: 1.0\r\n"
    for i in range(levels):
        if kind == "multipart":
            raw += b"Content-Type: multipart/mixed; boundary=b%d_\r\n\r\n--b%d_\r\n" % (i, i)
        else:
            raw += b"Content-Type: message/rfc822\r\n\r\nSubject: level %d\r\n" % i
    return raw + b"Content-Type: text/plain\r\n\r\nleaf\r\n"


SAMPLES: dict[str, bytes] = {
    "simple": SIMPLE,
    "alternative": ALTERNATIVE,
    "mixed_attachment": MIXED_ATTACHMENT,
    "nested_rfc822": NESTED_RFC822,
    "encoded_words": ENCODED_WORDS,
    "groups": GROUPS,
    "missing_headers": MISSING_HEADERS,
    "bare_lf": BARE_LF,
    "eight_bit_header": EIGHT_BIT_HEADER,
    "awkward_quoting": AWKWARD_QUOTING,
    "top_level_rfc822": TOP_LEVEL_RFC822,
    "folded_and_long": FOLDED_AND_LONG,
    "odd_addresses": ODD_ADDRESSES,
    "multipart_no_boundary": MULTIPART_NO_BOUNDARY,
    "rfc2231_params": RFC2231_PARAMS,
    "digest": DIGEST,
    "edge_structure": EDGE_STRUCTURE,
    "no_header": NO_HEADER,
    "nul_in_header": NUL_IN_HEADER,
    "repeated_headers": REPEATED_HEADERS,
    "address_edges": ADDRESS_EDGES,
    "sloppy_mime": SLOPPY_MIME,
    "header_only": b"Subject: only a header\r\nFrom: a@b.c\r\n",
    "deep_multipart": nested(120, "multipart"),
    "deep_rfc822": nested(101, "rfc822"),
}
