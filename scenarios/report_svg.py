"""Inline SVG charts for report.html, drawn here so the page needs no script and no network.

Pure functions: numbers in, an ``<svg>`` string out. Every bar is a ``<rect class="bar">`` with
``data-count`` / ``data-seconds``, so a test (or a reader's devtools) can check what was drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
# Timestamp differences span seconds (a lost zone) to years (the destination stamped "now"):
# bins by magnitude, both signs, so each cause lands in its own bar.
_EDGES = [(1.0, "1s"), (MINUTE, "1min"), (HOUR, "1h"), (DAY, "1d"), (30 * DAY, "30d"), (365 * DAY, "1y")]


def offset_bins() -> list[tuple[float, float, str]]:
    """(low, high, label) over the real line, earlier (−) first; zero is never a mismatch."""
    ups = []
    low, low_label = 0.0, ""
    for edge, label in _EDGES:
        ups.append((low, edge, f"{low_label}…{label}" if low_label else f"<{label}"))
        low, low_label = edge, label
    ups.append((low, float("inf"), f">{low_label}"))
    downs = [(-high, -low, "−" + label) for low, high, label in reversed(ups)]
    return downs + [(low, high, "+" + label) for low, high, label in ups]


def bin_counts(offsets: list[float]) -> list[tuple[str, int]]:
    counts = []
    for low, high, label in offset_bins():
        inside = [o for o in offsets if (low <= o < high if o >= 0 else low < o <= high)]
        counts.append((label, len(inside)))
    return counts


def histogram(offsets: list[float], *, width: int = 640, height: int = 160) -> str:
    """Destination INTERNALDATE − source instant, one bar per bin (empty bins drawn flat)."""
    counts = bin_counts(offsets)
    top = max((n for _, n in counts), default=0) or 1
    slot = width / len(counts)
    plot = height - 40
    parts = [f'<svg class="chart histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="timestamp differences">']
    for i, (label, n) in enumerate(counts):
        h = plot * n / top
        x = i * slot + 2
        parts.append(f'<rect class="bar" data-count="{n}" x="{x:.1f}" y="{10 + plot - h:.1f}" '
                     f'width="{slot - 4:.1f}" height="{h:.1f}"><title>{escape(label)}: {n}</title></rect>')
        if n:
            parts.append(f'<text x="{x + (slot - 4) / 2:.1f}" y="{8 + plot - h:.1f}" text-anchor="middle">{n}</text>')
        parts.append(f'<text class="axis" x="{x + (slot - 4) / 2:.1f}" y="{height - 12}" '
                     f'text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="0" y1="{10 + plot}" x2="{width}" y2="{10 + plot}"/></svg>')
    return "".join(parts)


@dataclass(frozen=True)
class Mark:
    """One thing on a run's lane: a wait (a bar ``seconds`` long) or an instant (a BYE, a reconnect)."""

    kind: str  # WAIT | BYE | RECONNECT | RECONNECT_FAILED
    at: float  # seconds into the run
    seconds: float = 0.0
    title: str = ""  # the tooltip: what happened and why (the server's reply)


WAIT, BYE, RECONNECT, RECONNECT_FAILED = "wait", "bye", "reconnect", "reconnect-failed"
_LEGEND = ((WAIT, "backoff wait"), (BYE, "server BYE"), (RECONNECT, "reconnected"), (RECONNECT_FAILED, "reconnect failed"))
_LANE, _LEFT = 24, 80  # lane height; room for the lane names


def timeline(lanes: list[tuple[str, float, list[Mark]]], *, width: int = 640) -> str:
    """One lane per run: the run's length, a bar per wait (from where it began, as long as it
    lasted), a triangle per BYE and a circle per reconnect at their instants; a legend below."""
    longest = max((max([length] + [m.at + m.seconds for m in marks]) for _, length, marks in lanes), default=0) or 1
    scale = (width - _LEFT - 8) / longest
    legend_y = _LANE * len(lanes) + 8
    height = legend_y + 34
    parts = [f'<svg class="chart timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="throttle waits, BYEs and reconnects per run">']
    for i, (name, length, marks) in enumerate(lanes):
        y = 4 + _LANE * i
        parts.append(f'<text x="0" y="{y + 14}">{escape(name)}</text>')
        parts.append(f'<rect class="run" x="{_LEFT}" y="{y + 8}" width="{length * scale:.1f}" height="4"/>')
        parts += [_mark(m, _LEFT + m.at * scale, y, scale) for m in sorted(marks, key=lambda m: m.kind != WAIT)]
    for j, (kind, label) in enumerate(_LEGEND):
        x = _LEFT + j * 130
        parts.append(f'<g class="legend" data-kind="{kind}">{_mark(Mark(kind, 0.0, 10.0), x, legend_y, 1.0, key=True)}'
                     f'<text x="{x + 14}" y="{legend_y + 14}">{label}</text></g>')
    parts.append(f'<text class="axis" x="{_LEFT}" y="{height - 2}">0 s</text>'
                 f'<text class="axis" x="{width}" y="{height - 2}" text-anchor="end">{longest:.1f} s</text></svg>')
    return "".join(parts)


def _mark(m: Mark, x: float, y: float, scale: float, *, key: bool = False) -> str:
    """``key``: the legend's sample, classed ``key`` so it is never counted as a drawn event."""
    title = f"<title>{escape(m.title)}</title>" if m.title else ""
    attrs = f'class="key {m.kind}"' if key else f'class="{"bar" if m.kind == WAIT else "mark"} {m.kind}" data-at="{m.at:g}"'
    if m.kind == WAIT:
        return (f'<rect {attrs} data-seconds="{m.seconds:g}" x="{x:.1f}" y="{y}" '
                f'width="{max(m.seconds * scale, 2):.1f}" height="20">{title}</rect>')
    if m.kind == BYE:  # a triangle pointing down at the instant
        return f'<path {attrs} d="M{x - 5:.1f},{y} L{x + 5:.1f},{y} L{x:.1f},{y + 10} Z">{title}</path>'
    return f'<circle {attrs} cx="{x:.1f}" cy="{y + 10}" r="5">{title}</circle>'
