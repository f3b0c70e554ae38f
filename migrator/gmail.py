"""Gmail labels shown as IMAP folders: which copies of a message to skip. Pure: msgids in, plan out.

Gmail (X-GM-EXT-1) shows one message, with one X-GM-MSGID, in every folder of its labels and in
``[Gmail]/All Mail``; archived mail (no label left) is only in All Mail. A folder-by-folder copy
therefore duplicates every labelled message once per label plus once for All Mail
(gmail-labels-as-folders, gmail-all-mail-archive-only). Trash and Spam are not in All Mail.

Two modes (``MigrationOptions.gmail_labels``):
- ``once`` (default): each X-GM-MSGID is copied once, into the first of its folders in
  ``LABEL_ORDER``: INBOX, then Sent, Drafts, the user's labels (by name), the views (Starred,
  Important), Spam, Trash — and All Mail last, which keeps only the archive-only messages.
- ``per-label``: every label folder keeps its copy (as Gmail shows it); All Mail still keeps
  only the archive-only messages, so nothing is copied twice into one folder.
Archive-only mail goes to the destination's \\Archive folder (or a new ``Archive``), never to a
folder named like Gmail's All Mail: at a non-Gmail destination that folder would be a second,
partial copy of the mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

GmailLabels = Literal["once", "per-label"]
ARCHIVE_NAME = "Archive"

# Rank of a folder by its special use (None = a user label); INBOX ranks before all.
_RANK = {"\\Sent": 1, "\\Drafts": 2, None: 3, "\\Flagged": 4, "\\Important": 4, "\\Junk": 5, "\\Trash": 6, "\\All": 7}
LABEL_ORDER = "INBOX, Sent, Drafts, user labels by name, Starred/Important, Spam, Trash, All Mail"


@dataclass(frozen=True)
class LabelFolder:
    """One source folder as Gmail shows it: its name, special use and UID → X-GM-MSGID."""

    name: str
    special_use: str | None
    msgids: dict[int, int]

    @property
    def rank(self) -> tuple[int, str]:
        if self.name.upper() == "INBOX":
            return (0, "")
        return (_RANK.get(self.special_use, 3), self.name.casefold())

    @property
    def is_all_mail(self) -> bool:
        return self.special_use == "\\All"


@dataclass
class LabelPlan:
    """Per source folder, the UIDs not to copy and why; summary figures for the report."""

    mode: GmailLabels
    order: list[str]  # source folder names in processing order, All Mail last
    skip: dict[str, dict[int, str]] = field(default_factory=dict)  # folder → UID → reason
    messages: int = 0  # distinct X-GM-MSGIDs seen
    archive_only: int = 0  # messages only in All Mail
    collapsed: int = 0  # label copies not copied again

    def summary(self) -> str:
        return (
            f"Gmail labels ({self.mode}): {self.messages} distinct messages by X-GM-MSGID; "
            f"{self.collapsed} further label copies not copied again; {self.archive_only} archive-only "
            f"messages from All Mail; order: {LABEL_ORDER}"
        )


def plan_labels(folders: list[LabelFolder], mode: GmailLabels = "once") -> LabelPlan:
    ordered = sorted(folders, key=lambda f: f.rank)
    plan = LabelPlan(mode=mode, order=[f.name for f in ordered])
    first: dict[int, str] = {}  # X-GM-MSGID → the folder its copy goes from
    for folder in ordered:
        skipped = plan.skip.setdefault(folder.name, {})
        for uid, msgid in sorted(folder.msgids.items()):
            home = first.get(msgid)
            if home is None:
                first[msgid] = folder.name
                plan.archive_only += folder.is_all_mail
                continue
            if folder.is_all_mail or mode == "once":
                skipped[uid] = f"gmail-label-collapsed: X-GM-MSGID {msgid} copied from {home!r}"
                plan.collapsed += 1
    plan.messages = len(first)
    return plan
