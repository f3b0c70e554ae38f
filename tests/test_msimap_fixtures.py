"""The fixture knobs for the Microsoft and flag quirks: odd flags, receipt requests, long lines."""

from __future__ import annotations

from migrator.longlines import longest_line
from simulators.fixtures import FixtureSpec
from simulators.fixtures.generator import generate
from simulators.profiles import load_profile


def extras(**knobs) -> list:
    return generate(FixtureSpec(seed=9, messages=0, folders=1, **knobs), load_profile("generic"))


def test_odd_flags_cycle_through_the_refused_kinds():
    flags = [sorted(m.flags) for m in extras(odd_flags=4)]
    assert flags[0] == ["\\Indexed", "\\Seen"] and flags[1] == ["$NotJunk", "NonJunk", "\\Seen"]
    assert len([f for f in flags[2] if f.startswith("$label")]) == 8 and flags[3] == flags[0]


def test_read_receipts_ask_for_one_half_read_some_already_marked():
    messages = extras(read_receipts=4)
    assert all(b"\r\nDisposition-Notification-To: " in m.raw for m in messages)
    assert [sorted(m.flags) for m in messages] == [["\\Seen"], [], ["$MDNSent", "\\Seen"], []]


def test_long_lines_have_exactly_that_many_bytes():
    messages = extras(long_lines=[12000, 9000])
    assert [longest_line(m.raw) for m in messages] == [12000, 9000]
    assert all(m.raw.count(b"\n") == m.raw.count(b"\r\n") for m in messages)  # CRLF throughout
