"""POP3 migration benchmark: the quirkmail engine beside fetchmail, same data, same run.

    python benchmarks/bench_pop3.py [--messages 2000] [--seed 7] [--repeat 2] [--batch-size 200]
                                    [--storage tmpfs|disk] [--out reports/bench/pop3.json]

The POP3 simulator (``generic`` profile, a generated INBOX of ``--messages``) runs in a separate
process, so server and client each get a core. A throwaway Dovecot receives the mail:
- ``quirkmail_imap``: our engine, POP3 → Dovecot IMAP (APPEND with the resolved date; the
  product's main path);
- ``quirkmail_lmtp``: our engine, POP3 → Dovecot LMTP (fetchmail's path, for a like-for-like figure);
- ``fetchmail_lmtp``: fetchmail 6.4 (``keep``, ``fetchall``, ``uidl``, no TLS) delivering to the
  same Dovecot LMTP. LMTP is the fairest real path for fetchmail: ``mda "doveadm save"`` or
  ``dovecot-lda`` starts a process per message (measured here: ~27 ms and ~21 ms per message,
  a ceiling of ~40-50 msg/s) and would measure process start-up, not fetchmail.
Everything is plaintext on loopback (neither side pays for TLS). Each runs ``--repeat`` times into
a fresh user and the best run counts (all runs are kept in the JSON). Each run is followed by a
re-run on unchanged data (``rerun_seconds``: ours consults its checkpoint, fetchmail its UIDL
file); afterwards the destination must hold every message exactly once. fetchmail's rc file is written mode 0600 (it refuses others) into
a temporary directory, with the simulator's throwaway password; nothing prints it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
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
# fetchmail addresses LMTP recipients as user@domain; Dovecot here looks users up by the full name.
FETCHMAIL_DOMAIN = "localhost"


def serve_pop3(spec_json: str, password: str, ready, stop) -> None:
    """Child process: populate a store and serve its INBOX over POP3 until ``stop`` is set."""
    from simulators.profiles import load_profile
    from simulators.store import INBOX

    profile = load_profile("generic")
    store, account = populated(USER, password, spec_json, profile)
    inbox = account.folders[INBOX].messages
    info = {"messages": len(inbox), "bytes": sum(m.size for m in inbox)}
    serve_world(store, profile, lambda world: {"port": world.start_pop3().port, **info}, ready, stop)


def inbox_count(dovecot: DovecotServer, user: str, password: str) -> int:
    from imapclient import IMAPClient

    with IMAPClient(dovecot.host, port=dovecot.imap_port, ssl=False, timeout=30) as c:
        c.login(user, password)
        return int(c.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"])


def fetchmail_rc(port: int, password: str, lmtp_port: int, recipient: str, *, fetchall: bool = True) -> str:
    """``fetchall`` takes every message whatever the UIDL file says: the first run; the re-run
    goes without it, so fetchmail skips the UIDLs it has seen, as ours skips its checkpoint."""
    return (
        "set no bouncemail\n"
        f"poll 127.0.0.1 service {port} protocol pop3 uidl auth password\n"
        f'  user "{USER}" there with password "{password}" is "{recipient}" here\n'
        f"  keep {'fetchall ' if fetchall else ''}no rewrite sslproto ''\n"
        f'  smtphost "127.0.0.1/{lmtp_port}" lmtp smtpname "{recipient}"\n'
    )


def run_fetchmail(workdir: Path, rc_text: str) -> subprocess.CompletedProcess:
    rc = workdir / "fetchmailrc"
    rc.write_text(rc_text, encoding="utf-8")
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(workdir), FETCHMAILHOME=str(workdir))
    return subprocess.run(
        ["fetchmail", "-f", str(rc), "-i", str(workdir / "uidl"), "--nosyslog", "-N", "--nodetach"],
        env=env, capture_output=True, text=True, timeout=900,
    )


def main(argv: list[str] | None = None) -> int:
    from simulators.fixtures import FixtureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2, help="runs per engine; the best counts")
    add_storage_option(parser)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "pop3.json")
    args = parser.parse_args(argv)

    if unavailable("bench_pop3", DovecotServer):
        return 2
    if not shutil.which("fetchmail"):
        print("bench_pop3: fetchmail is not installed", file=sys.stderr)
        return 2
    use_storage(args.storage)
    spec = FixtureSpec(seed=args.seed, messages=args.messages, folders=1)
    sim_password, dv_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    engines = ("quirkmail_imap", "quirkmail_lmtp", "fetchmail_lmtp")
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    users = {(e, r): f"{e.replace('_', '')}{r}" for e in engines for r in range(args.repeat)}
    for (engine, r), name in users.items():
        if engine.startswith("fetchmail"):
            users[(engine, r)] = f"{name}@{FETCHMAIL_DOMAIN}"
    with (
        simulator_process(serve_pop3, spec.model_dump_json(), sim_password) as child,
        dovecot_with_users(users.values(), dv_password) as dovecot,
        tempfile.TemporaryDirectory() as tmp,
    ):
        sim = child.info
        source = Endpoint(ServerURL.parse(f"pop3://{USER}@127.0.0.1:{sim['port']}?starttls=no"), Secret(sim_password))
        for r in range(args.repeat):
            for engine in engines:
                user = users[(engine, r)]
                work = Path(tmp) / f"{engine}{r}"
                work.mkdir()
                if engine == "fetchmail_lmtp":
                    rc_text = fetchmail_rc(sim["port"], sim_password, dovecot.lmtp_port, user)
                    seconds, proc = timed(lambda: run_fetchmail(work, rc_text))
                    ok = proc.returncode == 0
                    detail = proc.stderr.strip().splitlines()[-3:] if not ok else []
                    # The re-run: the UIDL file says everything is known ("no mail" is exit 1).
                    rerun_rc = fetchmail_rc(sim["port"], sim_password, dovecot.lmtp_port, user, fetchall=False)
                    rerun, again = timed(lambda: run_fetchmail(work, rerun_rc))
                    ok = ok and again.returncode in (0, 1)
                else:
                    scheme = f"lmtp://{user}@127.0.0.1:{dovecot.lmtp_port}" if engine.endswith("lmtp") else dovecot.url(user)
                    dest = Endpoint(ServerURL.parse(scheme), Secret("" if engine.endswith("lmtp") else dv_password))
                    opts = MigrationOptions(state_path=work / "state.sqlite", batch_size=args.batch_size)
                    seconds, report = timed(lambda: migrate(source, dest, opts))
                    ok, detail = report.exit_code == 0, [report.aborted] if report.aborted else []
                    rerun, again = timed(lambda: migrate(source, dest, opts))
                    ok = ok and again.exit_code == 0 and again.copied == 0
                arrived = inbox_count(dovecot, user, dv_password)  # after the re-run: no duplicates either
                row = {"run": r, "ok": ok and arrived == sim["messages"], "arrived": arrived,
                       **figures(seconds, sim["messages"], sim["bytes"]), "rerun_seconds": round(rerun, 3)}
                if detail:
                    row["detail"] = detail
                runs[engine].append(row)
                print(f"{engine:15s} run {r}: {row}", file=sys.stderr)
    best = {e: min((x for x in rs if x["ok"]), key=lambda x: x["seconds"], default=None) for e, rs in runs.items()}
    result = {
        "benchmark": "pop3",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fixture": {"seed": args.seed, "messages": sim["messages"], "bytes": sim["bytes"]},
        "source": "quirkmail POP3 simulator (generic profile), separate process, plaintext loopback",
        "destination": "Dovecot 2.3 (IMAP for quirkmail_imap, LMTP for the *_lmtp rows)",
        "storage": args.storage,
        "best": best,
        "runs": runs,
    }
    if best["quirkmail_lmtp"] and best["fetchmail_lmtp"]:
        result["quirkmail_lmtp_vs_fetchmail"] = round(best["fetchmail_lmtp"]["seconds"] / best["quirkmail_lmtp"]["seconds"], 2)
    write_report(args.out, result)
    for engine, b in best.items():
        print(f"{engine:15s} " + (f"{b['msg_per_s']:8.1f} msg/s  {b['seconds']:.2f} s" if b else "FAILED"))
    return 0 if all(best.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
