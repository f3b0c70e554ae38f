"""The POP3 simulator: a sans-I/O command engine behind a thin Twisted adapter.

- ``maildrop``  the session's INBOX snapshot: numbering, sizes, UIDLs, wire form, the UPDATE state
- ``engine``    ``Pop3Session``: bytes in, bytes (and START_TLS / CLOSE signals) out
- ``server``    Twisted protocol/factory: TLS (STLS and implicit), the autologout timer
- ``quirks``    provider behaviours registered with ``simulators.quirks``
"""
