"""The engine's quirk mitigations by name, each switchable off (``MigrationOptions.disable``).

Every mitigation lives at exactly one place in the engine, which asks ``Mitigations.on(name)``
there and nowhere else. Switching one off exists for two reasons: proof that a scenario catches
the damage its quirk causes (tests run the scenario with the mitigation off and assert the
verifier reports duplicates, wrong dates or missing messages), and a support engineer's way to
reproduce what a naive tool does. Default: every mitigation on. Every flow's report (IMAP,
POP3, EWS: all start from ``MigrationReport.begin``) lists the names switched off (``mitigations_off``),
and the summary says "mitigations OFF"; the POP3 and EWS flows ask none of them themselves.

| name                   | quirk(s)                                    | where (module: function)                | off means                                                  |
|------------------------|---------------------------------------------|-----------------------------------------|------------------------------------------------------------|
| identity-dedup         | delete-existing-vs-merge, uidvalidity-change,| engine: _Run._match_existing            | merge copies what the destination already holds            |
|                        | cutover-delta (another tool's copies)       | (EWS sources: collab.flow:              | (duplicates after a re-run with a lost/stale checkpoint,   |
|                        |                                             | _EwsRun._destination_index, IMAP or EWS | or after a kill between the destination's OK and the       |
|                        |                                             | destination)                            | checkpoint commit)                                         |
| internaldate           | bad-date-headers                            | engine: _Run._prepare                   | APPEND without a date: the destination stamps "now"        |
| throttle-backoff       | m365-throttled-backoff, gmail-throttled-    | engine: _Run._append                    | a throttled APPEND is not retried: the message is lost     |
|                        | suffix, yahoo-rate-limit                    |                                         | (skipped as refused); reads are still retried by           |
|                        |                                             |                                         | imapconn.expect_ok, which has no run options               |
| gmail-msgid            | gmail-labels-as-folders,                    | engine: _plan_and_copy (migrator.gmail) | every label folder and All Mail copied whole: duplicates   |
|                        | gmail-all-mail-archive-only                 |                                         |                                                            |
| gmail-append-confirm   | gmail-append-dedup                          | engine: _Run._append                    | an APPENDUID is trusted although nothing was stored        |
| gmail-1000-warning     | gmail-1000-per-folder                       | engine: _Run.analyse                    | no warning for a folder showing exactly 1000 messages      |
| permanentflags-filter  | invalid-flags-on-append,                    | engine: _Run._prepare,                  | every source flag is sent; the destination may refuse the  |
|                        | examine-empty-permanentflags                | _Run._without_keywords (too many)       | whole APPEND                                               |
| case-collision-rename  | case-insensitive-folders                    | engine: _Run._create                    | two folders differing by case are merged silently          |
| folder-rename          | m365-reserved-folders,                      | engine: _Run._create                    | a refused name leaves the folder (and its mail) behind     |
|                        | folder-name-restrictions                    |                                         |                                                            |
| reconnect-resume       | bye-mid-fetch, exchange-bye-after-errors,   | engine: _Run._fetch, _Run._store        | the first lost connection aborts the run                   |
|                        | stall and drop faults                       |                                         |                                                            |
| appendlimit-skip       | appendlimit                                 | engine: _Run.analyse                    | oversize messages are sent and refused one by one          |
| nonmail-folder-skip    | exchange-nonmail-folders-over-imap          | engine: _Run._holds_no_mail             | Calendar/Contacts/... are created empty at the destination |
|                        |                                             |                                         | and every item in them is skipped as no-body               |
| bandwidth-pause        | gmail-bandwidth-cap                         | engine: _Run.capped                     | a refused re-login after the cap's BYE fails the folder,   |
|                        |                                             |                                         | and the next ones: exit 1 "finished" with folders left     |
|                        |                                             |                                         | behind and no word that a later run resumes                |
| adaptive-timeout       | slow-large-folder                           | engine: _Run.__init__ (timeouts.py)     | one fixed read timeout: a big folder's SELECT times out,   |
|                        |                                             |                                         | the folder fails (exit 1)                                  |
| flag-after-append      | exchange-flagged-on-append-lost             | engine: _Run._restore_flagged           | \\Flagged given in APPEND is lost at Exchange: flag         |
|                        |                                             |                                         | mismatches                                                 |
| line-length-check      | exchange-append-limits                      | engine: _Run._fit_lines                 | a message with a line over the destination's limit is sent |
|                        |                                             |                                         | and refused (BAD, counted towards Exchange's BYE)          |
| mdn-neutralise         | mdn-resend                                  | engine: _Run._prepare                   | Exchange sends a read receipt again for every read copy    |
|                        |                                             |                                         | that asked for one                                         |
| content-repair         | bare-lf                                     | engine: _Run._repair                    | a message refused for bare LF line endings is skipped      |
|                        | (nul-bytes, 8bit-headers are skipped with   | (migrator.content)                      | (reason bare-lf) instead of sent again with CRLF           |
|                        | their own reason either way)                |                                         |                                                            |
| namespace-prefix       | inbox-namespace-prefix                      | engine: _plan_and_copy                  | NAMESPACE ignored: folders created outside INBOX. are      |
|                        |                                             |                                         | refused, a Courier source's INBOX.x lands as INBOX/x       |
| delimiter-rename       | hierarchy-delimiter                         | engine: _plan_and_copy                  | a name holding the destination's delimiter ("a/b") splits  |
|                        |                                             | (folders.plan_folders)                  | into a parent and a child there                            |
| lenient-list           | modified-utf7-names, malformed-responses    | engine: _plan_and_copy                  | imapclient's strict LIST parser: raw UTF-8 names read as   |
|                        | (LIST lines)                                | (migrator.list_reply)                   | Latin-1 (those folders fail), one bad line fails the run   |
| batch-connection-retry | gmail-too-many-connections,                 | batch.runner: _run_account              | a batch account whose login meets its connection limit (or |
|                        | dovecot-userip-limit, POP3 [LOGIN-DELAY]/   |                                         | a POP3 login delay) fails as "connection"; no second try   |
|                        | [IN-USE]                                    |                                         |                                                            |

Always on, not switchable (no naive variant worth reproducing): capabilities are taken from the
post-login list only (imapconn, via imapclient: capabilities-change-after-auth — its scenario's
damage proof switches appendlimit-skip off); an XOAUTH2 error continuation is answered with an
empty line and its JSON decoded (imapconn.Xoauth2, sources/pop3: xoauth2-error-continuation);
secrets from a variable or file are re-read at every connect (urls.Secret: oauth-token-expiry),
and a refused reconnect login stops the run with exit 4 instead of retrying (engine: _Run.fail);
a source message whose BODY[] shows 0x80 is read again with BINARY.PEEK[] where BINARY is
offered, kept only when it differs by NUL alone (sources/imap: nul-bytes, Dovecot shows NUL as 0x80).
"""

from __future__ import annotations

MITIGATIONS: dict[str, str] = {
    "identity-dedup": "merge matches what the destination already holds by message identity",
    "internaldate": "APPEND carries the resolved INTERNALDATE (else Received, else Date)",
    "throttle-backoff": "throttled replies are retried after the server's own suggested wait",
    "gmail-msgid": "Gmail: one copy per X-GM-MSGID (or per label), archive-only mail from All Mail, All Mail last",
    "gmail-append-confirm": "a Gmail-like destination's APPEND is confirmed by Message-ID, not by its UID",
    "gmail-1000-warning": "a folder showing exactly 1000 messages is reported as possibly capped",
    "permanentflags-filter": "flags the destination's PERMANENTFLAGS refuse are dropped and reported; a message "
                             "refused for its keywords (too many) goes again without them",
    "case-collision-rename": "a folder colliding by case with an existing one is renamed, never merged",
    "folder-rename": "a folder name the destination refuses (reserved, whitespace, characters) is renamed",
    "reconnect-resume": "a lost connection is reopened and the batch resumed after re-matching",
    "appendlimit-skip": "messages over the advertised APPENDLIMIT are skipped and reported up front",
    "nonmail-folder-skip": "a folder whose items come without a message body is skipped as a non-mail folder",
    "bandwidth-pause": "a spent provider bandwidth budget stops the run as resumable (exit 5), not folder by folder",
    "adaptive-timeout": "a command on a folder waits longer the more messages the folder holds",
    "flag-after-append": "\\Flagged is set again by UID STORE after APPEND (Exchange drops it from APPEND)",
    "line-length-check": "messages with a line over the destination's limit are skipped (or re-wrapped) up front",
    "mdn-neutralise": "read messages asking for a read receipt get $MDNSent, so the destination sends none",
    "content-repair": "a message refused for bare LF line endings is sent again with CRLF, and the repair reported",
    "namespace-prefix": "folder names are mapped through each side's NAMESPACE prefix (INBOX. on Courier-like servers)",
    "delimiter-rename": "a folder name part holding the destination's delimiter is renamed, not split",
    "lenient-list": "LIST lines are read one by one: raw UTF-8 names decoded, a missing quote tolerated, bad lines reported",
    "batch-connection-retry": "a batch account refused for its connection limit or a login delay is tried once more later",
}


class UnknownMitigation(ValueError):
    """A name in ``disable`` that is no mitigation; names it and lists the known ones."""

    def __init__(self, name: str):
        super().__init__(f"unknown mitigation {name!r} (known: {', '.join(MITIGATIONS)})")
        self.name = name


def check_names(names: list[str]) -> list[str]:
    for name in names:
        if name not in MITIGATIONS:
            raise UnknownMitigation(name)
    return names


class Mitigations:
    """Which mitigations a run uses; asked at the one place each mitigation lives."""

    def __init__(self, disabled: list[str] | frozenset[str] = ()):
        self.disabled = frozenset(check_names(list(disabled)))

    def on(self, name: str) -> bool:
        if name not in MITIGATIONS:  # a typo at a call site must not silently read as "off"
            raise UnknownMitigation(name)
        return name not in self.disabled
