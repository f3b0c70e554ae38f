"""IMAP migration benchmark: the quirkmail engine against ``doveadm backup`` (imapc), same data.

    python benchmarks/bench_imap.py [--messages 2000] [--folders 6] [--seed 1] [--connections 4]
                                    [--batch-size 200] [--repeat 3] [--storage tmpfs|disk]
                                    [--out reports/bench/imap.json]

A simulator (``generic`` profile) serves a generated fixture (``simulators.fixtures``) from a
separate process, so the server and the client each get a core. Two fresh users of one throwaway
Dovecot receive the same mailbox: one through our engine (``migrator.engine.migrate``), one through
``doveadm backup -R`` over imapc (Dovecot's own C migration engine, the reference). Each is then run
a second time on unchanged data (the incremental re-run). Both connect without TLS (loopback), so
neither pays for encryption. Prints a table and writes the JSON: messages, MB, seconds, msg/s, MB/s
for both engines, their ratio, and the re-run times. Needs root and Dovecot (see PEERS.md).

Each engine runs ``--repeat`` times into fresh users and the best run counts (other work on a
2-core machine makes single runs noisy; every run is kept in the JSON). ``--storage tmpfs`` (the
default) puts Dovecot's mail under /dev/shm: on disk Dovecot fsyncs every saved message, and that,
not the engines, then sets the pace (~250-350 msg/s for both here).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (  # noqa: E402
    ROOT, add_storage_option, dovecot_with_users, figures, populated, serve_world, simulator_process, timed,
    unavailable, use_storage, write_report,
)
from migrator.engine import MigrationOptions, migrate  # noqa: E402
from migrator.urls import Endpoint, Secret, ServerURL  # noqa: E402
from scenarios.peers.dovecot import DovecotServer  # noqa: E402

USER = "bench"


def serve_simulator(spec_json: str, password: str, ready, stop) -> None:
    """Child process: populate a store and serve it over IMAP until ``stop`` is set."""
    from simulators.profiles import load_profile

    profile = load_profile("generic")
    store, account = populated(USER, password, spec_json, profile)
    info = {"messages": sum(len(f.messages) for f in account.folders.values()),
            "bytes": sum(m.size for _, m in account.iter_messages()), "folders": len(account.folders)}
    serve_world(store, profile, lambda world: {"port": world.start_imap().port, **info}, ready, stop)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The mailbox served and how the engine copies it (shared with bench_record.py)."""
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--folders", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--connections", type=int, default=4)


@contextmanager
def simulator_source(spec, password: str) -> Iterator[dict]:
    """``serve_simulator`` in a spawned process for the block; yields its port and counts."""
    with simulator_process(serve_simulator, spec.model_dump_json(), password) as child:
        yield child.info


def main(argv: list[str] | None = None) -> int:
    from simulators.fixtures import FixtureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine; the best counts")
    add_storage_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "imap.json")
    args = parser.parse_args(argv)

    if unavailable("bench_imap", DovecotServer):
        return 2
    use_storage(args.storage)
    spec = FixtureSpec(seed=args.seed, messages=args.messages, folders=args.folders)
    sim_password, dv_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    runs: dict[str, list[dict]] = {"quirkmail": [], "doveadm_backup": []}
    users = [user for r in range(args.repeat) for user in (f"ours{r}", f"doveadm{r}")]
    with (
        simulator_source(spec, sim_password) as sim,
        dovecot_with_users(users, dv_password) as dovecot,
        tempfile.TemporaryDirectory() as tmp,
    ):
        source = Endpoint(ServerURL.parse(f"imap://{USER}@127.0.0.1:{sim['port']}?starttls=no"), Secret(sim_password))
        # doveadm wants the simulator's (throwaway, random) password in its options; it is not printed.
        imapc = ["-o", "imapc_host=127.0.0.1", "-o", f"imapc_port={sim['port']}", "-o", f"imapc_user={USER}",
                 "-o", f"imapc_password={sim_password}", "-o", "imapc_features=rfc822.size,fetch-headers"]
        for r in range(args.repeat):
            dest = Endpoint(ServerURL.parse(dovecot.url(f"ours{r}")), Secret(dv_password))
            options = MigrationOptions(
                connections=args.connections, batch_size=args.batch_size, state_path=Path(tmp) / f"state{r}.sqlite"
            )
            seconds, report = timed(lambda: migrate(source, dest, options))
            rerun_seconds, rerun = timed(lambda: migrate(source, dest, options))
            if report.copied != sim["messages"] or rerun.copied != 0:
                print(f"bench_imap: engine copied {report.copied}/{sim['messages']}, re-run {rerun.copied}", file=sys.stderr)
                return 1
            runs["quirkmail"].append({"seconds": seconds, "rerun_seconds": rerun_seconds})
            backup = [*imapc, "backup", "-R", "-u", f"doveadm{r}", "imapc:"]
            seconds, _ = timed(lambda: dovecot.doveadm(*backup))
            rerun_seconds, _ = timed(lambda: dovecot.doveadm(*backup))
            counted = dovecot.doveadm("search", "-u", f"doveadm{r}", "ALL").stdout.count("\n")
            if counted != sim["messages"]:
                print(f"bench_imap: doveadm stored {counted}/{sim['messages']}", file=sys.stderr)
                return 1
            runs["doveadm_backup"].append({"seconds": seconds, "rerun_seconds": rerun_seconds})

    def best(name: str) -> dict:
        fastest = min(r["seconds"] for r in runs[name])
        return {
            **figures(fastest, sim["messages"], sim["bytes"]),
            "rerun_seconds": round(min(r["rerun_seconds"] for r in runs[name]), 3),
            "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs[name]],
        }

    ours, theirs = best("quirkmail"), best("doveadm_backup")
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fixture": spec.model_dump(mode="json", include={"seed", "messages", "folders"}),
        "messages": sim["messages"],
        "folders": sim["folders"],
        "megabytes": round(sim["bytes"] / 1e6, 2),
        "dovecot_storage": args.storage,
        "cpus": os.cpu_count(),
        "quirkmail": {**ours, "connections": args.connections, "batch_size": args.batch_size},
        "doveadm_backup": theirs,
        "ratio_quirkmail_to_doveadm": round(theirs["seconds"] / ours["seconds"], 2),  # > 1: quirkmail is faster
    }
    write_report(args.out, result)
    print(f"{result['messages']} messages, {result['folders']} folders, {result['megabytes']} MB, "
          f"Dovecot on {args.storage}, best of {args.repeat}")
    for name in ("quirkmail", "doveadm_backup"):
        r = result[name]
        print(f"{name:15} {r['seconds']:7.2f} s  {r['msg_per_s']:7.0f} msg/s  {r['mb_per_s']:6.2f} MB/s  re-run {r['rerun_seconds']:.2f} s")
    print(f"speed ratio quirkmail/doveadm: {result['ratio_quirkmail_to_doveadm']}  → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
