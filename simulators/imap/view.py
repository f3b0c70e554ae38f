"""A session's view of its selected folder: sequence numbers, UID index, \\Recent, pending updates.

IMAP sequence numbers belong to a session, not to the folder: another session's APPEND or
EXPUNGE only becomes visible when this session reports it (untagged EXISTS / EXPUNGE). The view
keeps the session's own list and compares it with the store's folder when the engine asks.
UIDs are kept sorted, so UID sets resolve by bisection, never by scanning the folder.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from simulators.imap.fetch import format_flags
from simulators.imap.syntax import ImapSyntaxError, parse_sequence_set
from simulators.store import Account, Folder, MailItem

_RECENT_KEY = "imap.recent"  # Account.extra: (path, uidvalidity) → highest UID claimed as \Recent
_FLAGS_KEY = "imap.flag-changes"  # Account.extra: (path, uidvalidity) → [(uid, origin view token)]


# What a folder shows as messages: its mail, or what a quirk makes of it (Exchange shows a
# calendar's items as messages it cannot retrieve).
MessagesOf = Callable[[Folder], list[MailItem]]


def _mail(folder: Folder) -> list[MailItem]:
    return folder.messages


class MailboxView:
    def __init__(self, account: Account, folder: Folder, *, read_only: bool, messages_of: MessagesOf = _mail):
        self.account = account
        self.folder = folder
        self.read_only = read_only
        self.messages_of = messages_of
        self.uidvalidity = folder.uidvalidity
        self.items: list[MailItem] = list(messages_of(folder))
        self.uids: list[int] = [m.uid for m in self.items]
        self.recent: set[int] = set()
        self._claim_recent(self.uids)
        self._token = object()  # marks this view's own entries in the flag-change log
        self._flag_pos = len(self._flag_log())

    # \Recent: the first session to see a message gets it (Dovecot gives it to the first SELECT).
    def _claim_recent(self, uids: list[int]) -> None:
        claims = self.account.extra.setdefault(_RECENT_KEY, {})
        key = (self.folder.path, self.uidvalidity)
        claimed = claims.get(key, 0)
        fresh = [u for u in uids if u > claimed]
        if fresh:
            self.recent.update(fresh)
            if not self.read_only:
                claims[key] = fresh[-1]

    @staticmethod
    def unclaimed_recent(account: Account, folder: Folder, messages: list[MailItem]) -> int:
        claimed = account.extra.get(_RECENT_KEY, {}).get((folder.path, folder.uidvalidity), 0)
        return len(messages) - bisect.bisect_right([m.uid for m in messages], claimed)

    def __len__(self) -> int:
        return len(self.items)

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, text: str, *, uid: bool) -> list[int]:
        """0-based indexes of a sequence set (``uid``: a UID set), ascending, without repeats.

        Raises ImapSyntaxError for a malformed set or a sequence number beyond EXISTS.
        """
        n = len(self.uids)
        if uid:
            largest = self.uids[-1] if n else 0
            picked: set[int] = set()
            for lo, hi in parse_sequence_set(text, largest):
                if n and lo > largest and text.endswith("*"):
                    lo = largest  # "n:*" always includes the highest UID (RFC 3501 §6.4.8)
                picked.update(range(bisect.bisect_left(self.uids, lo), bisect.bisect_right(self.uids, hi)))
            return sorted(picked)
        ranges = parse_sequence_set(text, n)
        if any(hi > n or lo < 1 for lo, hi in ranges):
            raise ImapSyntaxError("Invalid messageset")
        if len(ranges) == 1:
            lo, hi = ranges[0]
            return list(range(lo - 1, hi))
        return sorted({i for lo, hi in ranges for i in range(lo - 1, hi)})

    # Flag changes by other sessions: every session of a folder appends (uid, origin) to one log
    # kept with the account; each view reads what was added since it last looked.
    def _flag_log(self) -> list:
        return self.account.extra.setdefault(_FLAGS_KEY, {}).setdefault((self.folder.path, self.uidvalidity), [])

    def note_flag_changes(self, uids: Iterable[int]) -> None:
        """This session changed these messages' flags (and told its client itself)."""
        log = self._flag_log()
        log.extend((uid, self._token) for uid in uids)
        self._flag_pos = len(log)

    def _flag_updates(self) -> list[bytes]:
        log = self._flag_log()
        if len(log) == self._flag_pos:
            return []
        changed = {uid for uid, origin in log[self._flag_pos :] if origin is not self._token}
        self._flag_pos = len(log)
        seqs = sorted(filter(None, (self.seq_of(uid) for uid in changed)))
        return [
            b"* %d FETCH (FLAGS %s)\r\n"
            % (seq, format_flags(self.items[seq - 1].flags, self.uids[seq - 1] in self.recent))
            for seq in seqs
        ]

    def keywords(self) -> list[str]:
        found = {f for m in self.messages_of(self.folder) for f in m.flags if not f.startswith("\\")}
        return sorted(found)

    def sync(self, *, allow_expunge: bool = True) -> list[bytes]:
        """Untagged EXPUNGE / EXISTS / RECENT lines for changes made since the last sync.

        Call with the store lock held. EXPUNGE may not be sent during FETCH, STORE or SEARCH
        (RFC 3501 §7.4.1); then only new messages are reported and expunges wait.
        """
        out = self._flag_updates()
        current = self.messages_of(self.folder)
        if len(current) == len(self.items) and (not current or current[-1].uid == self.uids[-1]):
            return out  # same length and same last UID: nothing appended, nothing removed
        recent_before = len(self.recent)
        live = {m.uid for m in current}
        if allow_expunge and any(u not in live for u in self.uids):
            kept_items, kept_uids, removed = [], [], 0
            for i, (u, m) in enumerate(zip(self.uids, self.items)):
                if u in live:
                    kept_items.append(m)
                    kept_uids.append(u)
                else:
                    out.append(b"* %d EXPUNGE\r\n" % (i + 1 - removed))
                    removed += 1
                    self.recent.discard(u)
            self.items, self.uids = kept_items, kept_uids
        last = self.uids[-1] if self.uids else 0
        new = [m for m in current if m.uid > last]
        if new:
            self.items.extend(new)
            self.uids.extend(m.uid for m in new)
            self._claim_recent([m.uid for m in new])
            out.append(b"* %d EXISTS\r\n" % len(self.items))
            out.append(b"* %d RECENT\r\n" % len(self.recent))
        elif len(self.recent) != recent_before:
            out.append(b"* %d RECENT\r\n" % len(self.recent))  # as Dovecot does after EXPUNGE
        return out
