"""The IMAP simulator: a sans-I/O command engine behind a thin Twisted adapter.

- ``syntax``  command framing (literals, LITERAL+, continuation lines), tokens, FETCH attributes
- ``names``   folder paths ↔ wire names (delimiter, namespace prefix, modified UTF-7), LIST patterns
- ``view``    a session's view of its selected folder: sequence numbers, UID index, \\Recent, updates
- ``fetch``   FETCH responses and IMAP date-times
- ``sasl``    AUTHENTICATE PLAIN / LOGIN
- ``engine``  ``ImapSession``: bytes in, bytes (and START_TLS / CLOSE signals) out
- ``server``  Twisted protocol/factory: TLS, timers, per-user connection limits, IDLE pushes
- ``quirks``  provider behaviours registered with ``simulators.quirks``
- ``message`` / ``search``  ENVELOPE, BODYSTRUCTURE, sections; SEARCH (pure functions)
"""
