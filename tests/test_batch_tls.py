"""``--ca-file`` and ``--insecure`` on the command line apply to every account of a batch: against
TLS simulators, no CA fails each account with the TLS class, the world's CA works, and
``--insecure`` works with every account's result naming its unverified servers."""

from __future__ import annotations

import json

from scenarios.cli import main
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.store import Store

PASSWORD = "pw-batch-tls-3"
USERS = ("ann", "ben")


def test_batch_takes_ca_file_and_insecure_for_every_account(tmp_path, capsys):
    src, dst = Store(), Store()
    for n, name in enumerate(USERS):
        account = src.add_account(name, PASSWORD)
        for i in range(2 + n):
            account.append(("INBOX",), f"Subject: {name}{i}\r\nMessage-ID: <{name}{i}@tls>\r\n\r\nx\r\n".encode())
        dst.add_account(name, PASSWORD)
    with SimulatorWorld(src, load_profile("generic")) as world, SimulatorWorld(dst, load_profile("generic")) as other:
        a, b = world.start_imap(implicit_tls=True), other.start_imap(implicit_tls=True)
        csv = tmp_path / "accounts.csv"
        csv.write_text("source,source_user,source_secret,dest,dest_user,dest_secret\n" + "".join(
            f"imaps://127.0.0.1:{a.port},{u},{PASSWORD},imaps://127.0.0.1:{b.port},{u},{PASSWORD}\n" for u in USERS))

        def run(outdir: str, *extra: str) -> tuple[int, list[dict]]:
            code = main(["migrate", "--batch", str(csv), "--outdir", str(tmp_path / outdir), *extra])
            summary = json.loads((tmp_path / outdir / "summary.json").read_text())
            return code, summary["accounts"]

        code, accounts = run("plain")  # the system store knows neither simulator's certificate
        assert code == 3 and [r["outcome"] for r in accounts] == ["connection"] * 2
        assert all(r["error"].startswith("TlsFailure") and "certificate verify failed" in r["error"] for r in accounts)
        # --ca-file (both sides) trusts the source's CA only: every account now fails at its destination.
        code, accounts = run("src-ca", "--ca-file", str(world.cafile))
        assert code == 3 and all(f"127.0.0.1:{b.port}" in r["error"] for r in accounts), accounts
        code, accounts = run("ca", "--from-ca-file", str(world.cafile), "--to-ca-file", str(other.cafile))
        assert code == 0 and [r["copied"] for r in accounts] == [2, 3]
        assert all(r["tls_unverified"] == [] for r in accounts)
        capsys.readouterr()
        code, accounts = run("insecure", "--insecure")
        assert "WARNING: TLS certificate verification was OFF for ann@127.0.0.1, ben@127.0.0.1" in \
            " ".join(capsys.readouterr().out.split())
        assert code == 0 and [r["already_present"] for r in accounts] == [2, 3]
        assert [r["tls_unverified"] for r in accounts] == [
            [f"source imaps://{u}@127.0.0.1:{a.port}", f"destination imaps://{u}@127.0.0.1:{b.port}"] for u in USERS]
