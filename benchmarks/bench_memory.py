"""Memory benchmark: peak RSS of the engine and of the simulator for a huge folder and huge messages.

    python benchmarks/bench_memory.py [--quick] [--messages 100000] [--huge-mb 50] [--attachments 8]
                                      [--connections 4] [--batch-size 200] [--cases bulk,text,attachments,parallel]
                                      [--out reports/bench/memory.json]

Three cases, each with a fresh simulator process (``generic`` profile) that serves one store
holding both the source and the destination account, bodies on disk (``Store(body_dir=...)``,
a temporary directory under /dev/shm when it exists):
- ``bulk``: ``--messages`` small messages (~1.1 KB, ``simulators.fixtures.bulk``) in one INBOX,
  bodies generated on demand from the seed (none stored on the source side);
- ``text``: one plain-text message of ``--huge-mb`` MB;
- ``attachments``: one multipart message of ``--huge-mb`` MB in ``--attachments`` base64 parts;
- ``parallel``: 4 folders of two ``--huge-mb`` MB messages each, so every worker meets a huge
  message at once (what the engine's shared byte budget, ``migrator.budget``, is for).
The engine (``migrator.engine.migrate``) runs in its own spawned process (``scenarios.peak_rss``):
its baseline (after imports) and peak RSS, wall time and msg/s are reported, with the simulator
process's peak RSS; the destination is then checked in the simulator (count and SHA-256 of every
body, in order, equal to the source's). ``--quick`` is 10,000 messages and 20 MB messages.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import ROOT, SPAWN, serve_world, simulator_process, write_report  # noqa: E402
from scenarios.peak_rss import migrate_in_child, peak_kib  # noqa: E402

SOURCE, DEST = "src", "dst"
PARALLEL_FOLDERS = 4  # the "parallel" case: this many folders of two huge messages each


def fill(account, case: str, args: argparse.Namespace) -> None:
    from simulators.fixtures.bulk import add_bulk, huge_message

    if case == "bulk":
        add_bulk(account, args.messages, seed=1)
    elif case == "parallel":  # every worker meets huge messages at once: the shared byte budget
        for n in range(PARALLEL_FOLDERS):
            account.create_folder((f"Huge{n}",))
            for k in range(2):  # no name keeps the previous message alive while the next is made
                account.append((f"Huge{n}",), huge_message(int(args.huge_mb * 1_000_000), seed=10 * n + k),
                               internaldate=datetime(2025, 1, 6, 9, tzinfo=timezone.utc))
    else:
        raw = huge_message(int(args.huge_mb * 1_000_000), attachments=args.attachments if case == "attachments" else 0)
        account.append(("INBOX",), raw, internaldate=datetime(2025, 1, 6, 9, tzinfo=timezone.utc))


def digest(account) -> dict:
    """Count, bytes and one SHA-256 over every body, by folder and UID (read one at a time)."""
    h, n, size = hashlib.sha256(), 0, 0
    for _, item in sorted(account.iter_messages(), key=lambda fm: (fm[0].path, fm[1].uid)):
        raw = item.raw
        h.update(b"%d:" % len(raw) + raw)
        n, size = n + 1, size + len(raw)
    return {"messages": n, "bytes": size, "sha256": h.hexdigest()}


def serve(case: str, args: argparse.Namespace, password: str, body_dir: str, done, ready, stop) -> None:
    """Child process: a disk-backed store with both accounts, served over IMAP until ``stop``;
    then its peak RSS and both accounts' digests go on ``done``."""
    from simulators.profiles import load_profile
    from simulators.store import Store

    profile = load_profile("generic")
    store = Store(body_dir=Path(body_dir))
    fill(store.add_account(SOURCE, password), case, args)
    store.add_account(DEST, password)
    serve_world(store, profile, lambda world: {"port": world.start_imap().port, "filled_peak_kib": peak_kib()},
                ready, stop)
    peak = peak_kib()  # before the check below reads every body once more
    done.put({"peak_kib": peak, "source": digest(store.account(SOURCE)), "dest": digest(store.account(DEST))})
    store.close()


def run_case(case: str, args: argparse.Namespace) -> dict:
    from migrator.engine import MigrationOptions

    password = secrets.token_urlsafe(12)
    done = SPAWN.Queue()
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm, prefix="bench-memory-") as tmp:
        with simulator_process(serve, case, args, password, tmp + "/bodies", done,
                               ready_timeout=900, join_timeout=30) as sim:
            info = sim.info
            url = f"imap://{{}}@127.0.0.1:{info['port']}?starttls=no"
            options = MigrationOptions(connections=args.connections, batch_size=args.batch_size,
                                       state_path=Path(tmp) / "state.sqlite")
            run = migrate_in_child(url.format(SOURCE), url.format(DEST), password, options.model_dump_json())
            sim.stop()  # the child then sends its peak and digests
            served = done.get(timeout=900)
    src, dst = served["source"], served["dest"]
    return {
        "messages": src["messages"],
        "megabytes": round(src["bytes"] / 1e6, 2),
        "copied": run.copied,
        "byte_exact": src == dst,
        "engine": {
            "baseline_mb": round(run.baseline_kib / 1024, 1),
            "peak_rss_mb": round(run.peak_kib / 1024, 1),
            "growth_mb": round(run.growth_kib / 1024, 1),
            "seconds": round(run.seconds, 2),
            "msg_per_s": round(run.copied / run.seconds, 1) if run.seconds else None,
            "mb_per_s": round(src["bytes"] / 1e6 / run.seconds, 2) if run.seconds else None,
        },
        "simulator": {
            "peak_rss_mb": round(served["peak_kib"] / 1024, 1),
            "after_fill_mb": round(info["filled_peak_kib"] / 1024, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 messages and 20 MB messages")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--huge-mb", type=float, default=50)
    parser.add_argument("--attachments", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--cases", default="bulk,text,attachments,parallel")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "memory.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.huge_mb = 10_000, 20
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - {"bulk", "text", "attachments", "parallel"}
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    results = {}
    for case in cases:
        results[case] = run_case(case, args)
        r = results[case]
        e, s = r["engine"], r["simulator"]
        print(f"{case:12} {r['messages']:7} msgs {r['megabytes']:8.1f} MB  engine peak {e['peak_rss_mb']:6.1f} MB "
              f"(+{e['growth_mb']:.1f} over {e['baseline_mb']:.1f})  simulator peak {s['peak_rss_mb']:6.1f} MB  "
              f"{e['seconds']:7.1f} s  {e['msg_per_s']} msg/s  byte-exact {r['byte_exact']}", flush=True)
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "connections": args.connections,
        "batch_size": args.batch_size,
        "store": "simulator → simulator, one process, bodies on disk (tmpfs)",
        "cases": results,
    }
    write_report(args.out, result)
    print(f"→ {args.out}")
    bad = [c for c, r in results.items() if not r["byte_exact"] or r["copied"] != r["messages"]]
    if bad:
        print(f"bench_memory: destination differs from the source in {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
