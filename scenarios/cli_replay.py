"""``quirkmail replay``: serve recorded sessions back to a live client, then say whether it matched.

    quirkmail replay run/transcripts/                 # every *.jsonl (and rawlog pair) in it
    quirkmail replay session.jsonl --lenient --pace recorded --once
    quirkmail replay rawlogs/ login-rawlogs/          # Dovecot rawlogs, login halves joined
    quirkmail replay imapsync.log                     # host1 and host2 sessions, a port each

It prints one endpoint per (label, protocol) group of recordings, serves until Ctrl-C (with
``--once``: until every recording was played and its connection closed), prints a summary and
exits 0 when every client unit matched the recording, 1 on a divergence, 2 on unreadable input.
Imports are light: the reactor and the simulators load only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from migrator.errors import ExitCode

POLL_SECONDS = 0.1


def add_replay(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="serve a recorded session's server side back to a client (reproduce a customer's log)",
        description="Play recorded server replies to whatever connects: quirkmail transcripts (*.jsonl), "
        "Dovecot rawlogs (.in/.out pairs) or imapsync --debugimap logs. Each connection takes the next "
        "unused recording of its group (the one its commands match). Exit 0 when everything matched, "
        "1 on a divergence.",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="TRANSCRIPT|DIR|RAWLOG",
                   help="transcript files, folders of them or of rawlog pairs, rawlog files, imapsync logs")
    p.add_argument("--port", type=int, default=0, help="port of the first group (default: a free one; others: free ones)")
    p.add_argument("--lenient", action="store_true",
                   help="skip ahead to the next recorded command that matches instead of answering a divergence")
    p.add_argument("--pace", choices=("fast", "recorded"), default="fast",
                   help="send replies at once (fast) or with the recorded delays (recorded: throttling stays slow)")
    p.add_argument("--once", action="store_true", help="stop when every recording was played and closed")
    p.set_defaults(handler=cmd_replay)


def load_scripts(paths: list[Path]):
    """The recordings under ``paths`` as replay scripts, and the import notes."""
    from simulators.replay.script import build
    from transcripts.rawlog import load

    imported = load(paths)
    return [build(transcript, name) for name, transcript in imported.sessions], imported.notes


def cmd_replay(args: argparse.Namespace) -> int:
    from simulators.replay.script import ReplayError
    from simulators.replay.server import ReplayServer, ReplayServerError
    from transcripts.format import TranscriptError
    from transcripts.rawlog import RawlogError

    try:
        scripts, notes = load_scripts(args.paths)
    except (TranscriptError, RawlogError, ReplayError) as exc:
        print(f"quirkmail replay: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    if not scripts:
        print(f"quirkmail replay: no recorded sessions in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return ExitCode.USAGE
    for note in notes:
        print(f"note: {note}")
    server = ReplayServer(scripts, lenient=args.lenient, pace=args.pace)
    try:
        endpoints = server.start(args.port)
    except ReplayServerError as exc:
        print(f"quirkmail replay: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        for endpoint in endpoints:
            label = f"{endpoint.label}, " if endpoint.label else ""
            print(f"{endpoint.protocol + ':':6} {endpoint.url()}  ({label}{endpoint.sessions} recorded "
                  f"session{'s' if endpoint.sessions != 1 else ''})")
        if server.cafile:
            print(f"cafile: {server.cafile} (recorded with TLS: the client must trust this CA)")
        print("serving until every recording was played" if args.once else "Ctrl-C stops", flush=True)
        try:
            while not (args.once and server.finished):
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            print("stopping")
        summary = server.summary()
    finally:
        server.stop()
    print(format_summary(summary))
    return ExitCode.ITEMS_SKIPPED if summary.divergences else ExitCode.OK


def format_summary(summary) -> str:
    lines = [f"replay: {summary.sessions} session{'s' if summary.sessions != 1 else ''} played, "
             f"{summary.matched} commands matched, {len(summary.divergences)} "
             f"divergence{'s' if len(summary.divergences) != 1 else ''}"]
    lines += [f"  diverged: {d}" for d in summary.divergences]
    lines += [f"  skipped (lenient): {s.script}: {', '.join(s.steps)}" for s in summary.skipped]
    lines += [f"  not reached: {name}: {n} recorded step{'s' if n != 1 else ''}" for name, n in summary.unplayed.items()]
    lines += [f"  not played: {name}" for name in summary.unused]
    return "\n".join(lines)
