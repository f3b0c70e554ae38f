"""IMAP quirks: provider behaviours hooked into ``simulators.imap.engine`` (see QUIRKS.md).

Imported by ``simulators.quirks._load_builtin_quirks``; each class registers itself by name.
Replies are reproduced byte for byte as users reported them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from simulators.quirks import Quirk, register


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


@register
class CaseInsensitiveFolders(Quirk):
    """Exchange/M365: folder names differ only by case collide — `NO Mailbox already exists`.

    Creating ``trash`` when ``Trash`` exists is refused, and ``trash`` names ``Trash`` in every
    other command (SELECT, APPEND, STATUS ...).
    """

    name = "case-insensitive-folders"
    protocols = frozenset({"imap"})

    class Params(_Params):
        reply: str = "NO Mailbox already exists"

    def imap_resolve_folder(self, session, path):
        return _case_match(session.account.folders, path)

    def imap_create(self, session, path):
        if _case_match(session.account.folders, path) is not None:
            return self.params.reply
        return None


def _case_match(folders, path: tuple[str, ...]) -> tuple[str, ...] | None:
    wanted = tuple(p.casefold() for p in path)
    return next((p for p in folders if tuple(x.casefold() for x in p) == wanted), None)


@register
class M365ReservedFolders(Quirk):
    """M365: top-level names such as `Files` are refused — `NO Folder name is reserved`.

    ``names`` defaults to the profile's ``imap.reserved_names``; matching ignores case, so a
    root-level ``Inbox`` typed differently from INBOX is caught by listing it too.
    """

    name = "m365-reserved-folders"
    protocols = frozenset({"imap"})

    class Params(_Params):
        names: list[str] = []
        reply: str = "NO Folder name is reserved"

    def imap_create(self, session, path):
        names = self.params.names or session.imap.reserved_names
        if len(path) == 1 and path[0].casefold() in {n.casefold() for n in names}:
            return self.params.reply
        return None


@register
class AppendLimit(Quirk):
    """APPENDLIMIT=<bytes> advertised after login; larger APPENDs are refused before the literal.

    Gmail advertises ``APPENDLIMIT=35651584``; Exchange answers `NO Maximum size of appendable
    message has been exceeded` (give it as ``reply``).
    """

    name = "appendlimit"
    protocols = frozenset({"imap"})

    class Params(_Params):
        bytes: int
        advertise: bool = True
        reply: str = "NO [TOOBIG] Mail size is larger than the maximum size allowed by server configuration"

    def imap_capabilities(self, caps, authenticated):
        if not (authenticated and self.params.advertise):
            return None
        kept = [c for c in caps if not c.upper().startswith("APPENDLIMIT")]
        return kept + [f"APPENDLIMIT={self.params.bytes}"]

    def imap_append_size(self, session, size):
        return self.params.reply if size > self.params.bytes else None
