"""Seeded, consistent, length-keeping pseudonyms: the one place that decides what a value becomes.

Every rewrite in the anonymiser comes down to words: a run of ASCII letters and digits or
non-ASCII characters. A word's pseudonym is drawn from a keyed hash of the seed and the word (case
folded), so the same word gets the same pseudonym in every file of a run, and again in another run
with the same seed. Addresses, domains, display names, folder names and login users are all
mapped word by word, which is what keeps ``alice`` in ``LOGIN alice``, ``alice@example.net`` in a
From header and ``"alice" "example.net"`` in an ENVELOPE consistent without any parsing of who is who.

Each pseudonym keeps the word's byte length and the class of each character: an ASCII letter stays
an ASCII letter of the same case, a digit a digit. A non-ASCII character becomes ASCII letters of
its UTF-8 length, or, where the 8-bit bytes themselves are the evidence (raw 8-bit header fields,
raw UTF-8 and modified UTF-7 folder names), another non-ASCII character of the same UTF-8 and UTF-16
length, so ``8bit-headers`` stays a quirk and a modified UTF-7 name keeps its encoded length. Bytes
that are not UTF-8 become letters or, kept 8-bit, other bytes 0xA0-0xBF (which never start a UTF-8
sequence).

Pseudonyms never collide (a second word drawing a taken pseudonym draws again), so two folders stay
two folders, and never take a kept word (``INBOX``, ``Sent``...), so no folder turns special.
"""

from __future__ import annotations

import hashlib
import random
import re

_WORD = re.compile(r"[A-Za-z0-9\u0080-\U0010ffff]+")
_WORD_BYTES = re.compile(rb"(?:[A-Za-z0-9]|[\x80-\xff])+")
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", _LOWER)
_DIGITS = "0123456789"
# Kept 8-bit: replacement characters by UTF-8 length, all in the BMP for 2 and 3 bytes (one UTF-16
# unit, as the originals) and beyond it for 4 (two units, as the originals).
_WIDE = {
    2: [chr(c) for c in range(0xE0, 0xFF) if c != 0xF7],
    3: [chr(c) for c in range(0x4E00, 0x4F00)],
    4: [chr(c) for c in range(0x20000, 0x20100)],
}
_ATTEMPTS = 64  # new draws before a collision is accepted (only 1- and 2-letter words run out)

# Folder names every mail system has: not personal, and the special-use mapping depends on them.
KNOWN_FOLDERS = frozenset(
    name.casefold()
    for name in (
        "INBOX", "Sent", "Sent Items", "Sent Messages", "Sent Mail", "Drafts", "Draft", "Trash",
        "Deleted Items", "Deleted Messages", "Deleted", "Bin", "Junk", "Junk E-mail", "Junk Email", "Spam",
        "Bulk Mail", "Archive", "Archives", "Outbox", "Templates", "[Gmail]", "[Google Mail]", "All Mail",
        "Important", "Starred", "Chats", "Calendar", "Contacts", "Tasks", "Notes", "Journal",
        "Conversation History", "Sync Issues", "Conflicts", "Local Failures", "Server Failures", "RSS Feeds",
        "Papierkorb", "Gesendet", "Gesendete Elemente", "Entwürfe", "Gelöschte Elemente", "Posteingang",
        "Éléments envoyés", "Éléments supprimés", "Brouillons", "Corbeille", "Files", "Notes", "Queue",
    )
)  # fmt: skip
# Mail providers' own domains say which provider (evidence), not who.
PUBLIC_DOMAINS = frozenset(
    (
        "gmail.com", "googlemail.com", "google.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
        "office365.com", "outlook.office365.com", "yahoo.com", "ymail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "163.com", "126.com", "188.com", "qq.com",
        "zoho.com", "fastmail.com", "mail.ru", "yandex.ru", "example.com", "example.net", "example.org",
        "localhost",
    )
)  # fmt: skip


class Pseudonyms:
    """The run's word → pseudonym table; ``mapping()`` is what ``--mapping`` writes."""

    def __init__(self, seed: int | str) -> None:
        self._key = hashlib.sha256(f"quirkmail-anonymise\x00{seed}".encode()).digest()
        self._forward: dict[tuple[str, bool], str] = {}
        self._taken: dict[bool, set[str]] = {False: set(), True: set()}
        reserved = {part for name in KNOWN_FOLDERS for part in _WORD.findall(name)} | {"from", "inbox", "nil"}
        for kept8 in (False, True):
            self._taken[kept8] |= reserved
        self.identity: set[str] = set()  # case-folded words seen in who/where: names, users, folders
        self.record: dict[str, dict[str, str]] = {}  # kind → original → pseudonym (for --mapping)
        self._bytes_cache: dict[tuple[bytes, bool, bool], bytes] = {}
        self.masked = 0  # secrets masked here that the recorder had left (raw logs, other tools)

    # words -------------------------------------------------------------------------------------

    def word(self, word: str, *, keep8bit: bool = False, identity: bool = False) -> str:
        key = word.translate(_ASCII_LOWER)  # str.lower() may change a character's UTF-8 length
        if identity:
            self.identity.add(key)
        if key.isdigit() and len(key) <= 1:
            return word  # a lone digit says nothing and is often structure (list numbering)
        mapped = self._forward.get((key, keep8bit))
        if mapped is None:
            mapped = self._draw(key, keep8bit)
            self._forward[(key, keep8bit)] = mapped
        return _apply_case(word, mapped)

    def _draw(self, key: str, keep8bit: bool) -> str:
        taken = self._taken[keep8bit]
        candidate = key
        for attempt in range(_ATTEMPTS):
            rng = random.Random(hashlib.blake2b(f"{attempt}\x00{key}".encode("utf-8", "surrogateescape"),
                                                key=self._key, digest_size=16).digest())
            candidate = "".join(_replace_char(c, rng, keep8bit) for c in key)
            if candidate not in taken and candidate != key:
                break
        taken.add(candidate)
        return candidate

    def text(self, text: str, *, keep8bit: bool = False, identity: bool = False, keep=frozenset()) -> str:
        """Every word of ``text`` mapped; ``keep``: case-folded words left as they are."""
        return _WORD.sub(lambda m: m[0] if m[0].translate(_ASCII_LOWER) in keep else
                         self.word(m[0], keep8bit=keep8bit, identity=identity), text)

    def text_bytes(self, data: bytes, *, keep8bit: bool = False, identity: bool = False, keep=frozenset()) -> bytes:
        return _WORD_BYTES.sub(lambda m: self.word_bytes(m[0], keep8bit=keep8bit, identity=identity, keep=keep), data)

    def word_bytes(self, word: bytes, *, keep8bit: bool = False, identity: bool = False, keep=frozenset()) -> bytes:
        if keep and word.lower().decode("utf-8", "surrogateescape") in keep:
            return word
        key = (word, keep8bit, identity)
        out = self._bytes_cache.get(key)  # the hot path: most words of a mailbox repeat
        if out is None:
            text = word.decode("utf-8", "surrogateescape")
            out = _WORD.sub(lambda m: self.word(m[0], keep8bit=keep8bit, identity=identity), text) \
                .encode("utf-8", "surrogateescape")
            self._bytes_cache[key] = out
        return out

    def known(self, word: str) -> bool:
        return word.translate(_ASCII_LOWER) in self.identity

    # who and where -----------------------------------------------------------------------------

    def domain(self, domain: bytes, *, keep8bit: bool = True) -> bytes:
        """``mx.customer.de`` → ``qz.xbwkdjzq.de``: every label but a known top-level one; providers' kept."""
        folded = domain.lower().rstrip(b".")
        if any(folded == d or folded.endswith(b"." + d) for d in _PUBLIC_BYTES):
            return domain
        labels = domain.split(b".")
        last = len(labels) - 1 if len(labels) > 1 and labels[-1].lower() in _TLDS else None
        out = b".".join(lab if i == last else self.text_bytes(lab, keep8bit=keep8bit, identity=True)
                        for i, lab in enumerate(labels))
        self._remember("domains", domain, out)
        return out

    @staticmethod
    def is_tld(label: bytes) -> bool:
        return label.lower() in _TLDS

    def local(self, local: bytes, *, keep8bit: bool = True) -> bytes:
        return self.text_bytes(local, keep8bit=keep8bit, identity=True)

    def address(self, address: bytes, *, keep8bit: bool = True) -> bytes:
        local, at, domain = address.rpartition(b"@")
        if not at:
            return self.local(address, keep8bit=keep8bit)
        out = self.local(local, keep8bit=keep8bit) + b"@" + self.domain(domain, keep8bit=keep8bit)
        self._remember("addresses", address, out)
        return out

    def login(self, user: bytes) -> bytes:
        """A login name: an address, or a plain user name (a word of who)."""
        out = self.address(user) if b"@" in user else self.local(user)
        self._remember("logins", user, out)
        return out

    def folder_text(self, name: str) -> str:
        """A decoded folder name: well-known parts (Sent, [Gmail], All Mail ...) kept, others mapped."""
        parts = re.split(r"([/.\\])", name)
        out = "".join(p if i % 2 or p.casefold() in KNOWN_FOLDERS else self.text(p, keep8bit=True, identity=True)
                      for i, p in enumerate(parts))
        if out != name:
            self.record.setdefault("folders", {})[name] = out
        return out

    # bytes with no words -----------------------------------------------------------------------

    def random_bytes(self, size: int, like: bytes) -> bytes:
        """Stand-in content for an attachment: same size, same for the same content and seed."""
        seed = hashlib.blake2b(like, key=self._key, digest_size=16).digest()
        return random.Random(seed).randbytes(size)

    def mask(self, secret: bytes) -> bytes:
        """A secret: one ``*`` a byte, as the recorder's redaction writes it; counted when it was
        not masked yet, so a transcript's ``redacted`` tells a replay that ``*`` runs match anything."""
        if secret.strip(b"*"):
            self.masked += 1
        return b"*" * len(secret)

    def remember(self, kind: str, original: bytes, pseudonym: bytes) -> None:
        self._remember(kind, original, pseudonym)

    def _remember(self, kind: str, original: bytes, pseudonym: bytes) -> None:
        if original != pseudonym:
            self.record.setdefault(kind, {})[original.decode("utf-8", "replace")] = pseudonym.decode("utf-8", "replace")

    def mapping(self) -> dict[str, dict[str, str]]:
        """What de-anonymises the output: who and where, subjects, Message-IDs (never body words)."""
        out = {kind: dict(sorted(values.items())) for kind, values in sorted(self.record.items())}
        out["names"] = {k: v for (k, kept8), v in sorted(self._forward.items()) if k in self.identity and not kept8}
        return out


# Top-level domains kept as they are (a country at most); any other last label is mapped.
_TLDS = frozenset(
    b"com net org edu gov mil int info biz name pro io co me tv app dev cloud email online site local lan "
    b"test example invalid localhost localdomain internal arpa eu de at ch uk fr it es pt nl be lu dk se no "
    b"fi is ie pl cz sk hu ro bg gr tr ru ua cn jp kr in au nz ca us mx br ar za il".split()
)
_PUBLIC_BYTES = tuple(d.encode() for d in PUBLIC_DOMAINS)


def _replace_char(c: str, rng: random.Random, keep8bit: bool) -> str:
    if c.isascii():
        if c.isdigit():
            return rng.choice(_DIGITS)
        return rng.choice(_LOWER)  # the key is lower case; _apply_case restores the original's case
    size = len(c.encode("utf-8", "surrogateescape"))
    if not keep8bit:
        return "".join(rng.choice(_LOWER) for _ in range(size))
    if "\udc80" <= c <= "\udcff":  # a byte that was not UTF-8: stays a lone high byte
        return chr(0xDCA0 + rng.randrange(32))
    return rng.choice(_WIDE[size])


def _apply_case(original: str, mapped: str) -> str:
    if len(original) == len(mapped):
        return "".join(m.upper() if o.isascii() and o.isupper() else m for o, m in zip(original, mapped))
    # A non-ASCII character became several letters: keep the word's shape (Title, UPPER).
    if original[:1].isascii() and original[:1].isupper():
        return mapped.upper() if original.isupper() else mapped[:1].upper() + mapped[1:]
    return mapped
