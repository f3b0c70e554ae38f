"""What ``--record`` costs: the IMAP migration of bench_imap's data with and without recording.

    python benchmarks/bench_record.py [--messages 2000] [--folders 6] [--seed 1] [--connections 4]
                                      [--repeat 3] [--out reports/bench/record.json]

Same set-up as ``bench_imap.py`` (a simulator in its own process as the source, a throwaway
Dovecot on tmpfs as the destination, no TLS): runs alternate plain / recorded into fresh users,
the best of each counts. The transcripts go to a folder on the ordinary temp disk, as a user's
``--record DIR`` would. Prints and writes msg/s both ways, their ratio (recorded / plain: 1.0 =
free) and the transcripts' size. Needs root and Dovecot (see PEERS.md).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import ROOT, dovecot_with_users, figures, timed, unavailable, write_report  # noqa: E402
from benchmarks.bench_imap import USER, add_data_arguments, simulator_source  # noqa: E402
from migrator.engine import MigrationOptions, migrate  # noqa: E402
from migrator.recording import recorded  # noqa: E402
from migrator.urls import Endpoint, Secret, ServerURL  # noqa: E402
from scenarios.peers.dovecot import DovecotServer  # noqa: E402
from transcripts.tap import Recorder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from simulators.fixtures import FixtureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--repeat", type=int, default=3, help="runs each way; the best counts")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "record.json")
    args = parser.parse_args(argv)

    if unavailable("bench_record", DovecotServer):
        return 2
    record_root = Path(tempfile.mkdtemp(prefix="quirkmail-bench-record-"))  # before tmpfs becomes the default
    tempfile.tempdir = "/dev/shm"
    spec = FixtureSpec(seed=args.seed, messages=args.messages, folders=args.folders)
    sim_password, dv_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    seconds: dict[str, list[float]] = {"plain": [], "recorded": []}
    transcript_bytes = sessions = 0
    users = [f"{way}{r}" for r in range(args.repeat) for way in seconds]
    try:
        with (
            simulator_source(spec, sim_password) as sim,
            dovecot_with_users(users, dv_password) as dovecot,
            tempfile.TemporaryDirectory() as tmp,
        ):
            source = Endpoint(ServerURL.parse(f"imap://{USER}@127.0.0.1:{sim['port']}?starttls=no"), Secret(sim_password))
            for user in users:
                way = user.rstrip("0123456789")
                dest = Endpoint(ServerURL.parse(dovecot.url(user)), Secret(dv_password))
                options = MigrationOptions(connections=args.connections, state_path=Path(tmp) / f"{user}.sqlite")
                recorder = Recorder(record_root / user) if way == "recorded" else None
                src, dst = recorded(source, recorder, "source"), recorded(dest, recorder, "destination")
                took, report = timed(lambda: migrate(src, dst, options))
                if recorder is not None:
                    recorder.close()
                    sessions = len(recorder.paths)
                    transcript_bytes = sum(p.stat().st_size for p in recorder.paths)
                if report.copied != sim["messages"]:
                    print(f"bench_record: {way} run copied {report.copied}/{sim['messages']}", file=sys.stderr)
                    return 1
                seconds[way].append(took)
    finally:
        shutil.rmtree(record_root, ignore_errors=True)

    plain, rec = (figures(min(seconds[w]), sim["messages"], sim["bytes"]) for w in ("plain", "recorded"))
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fixture": spec.model_dump(mode="json", include={"seed", "messages", "folders"}),
        "messages": sim["messages"],
        "megabytes": round(sim["bytes"] / 1e6, 2),
        "cpus": os.cpu_count(),
        "connections": args.connections,
        "plain": {**plain, "runs": [round(s, 3) for s in seconds["plain"]]},
        "recorded": {**rec, "runs": [round(s, 3) for s in seconds["recorded"]], "sessions": sessions,
                     "transcript_megabytes": round(transcript_bytes / 1e6, 2)},
        "ratio_recorded_to_plain": round(rec["msg_per_s"] / plain["msg_per_s"], 2),
    }
    write_report(args.out, result)
    print(f"{result['messages']} messages, {result['megabytes']} MB, best of {args.repeat}")
    for way in ("plain", "recorded"):
        r = result[way]
        print(f"{way:9} {r['seconds']:7.2f} s  {r['msg_per_s']:7.0f} msg/s  {r['mb_per_s']:6.2f} MB/s")
    print(f"transcripts: {sessions} sessions, {result['recorded']['transcript_megabytes']} MB; "
          f"msg/s ratio recorded/plain: {result['ratio_recorded_to_plain']}  → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
