"""migrator.cli: arguments, password sources (never argv), exit codes for bad input."""

import argparse

import pytest

from migrator.cli import add_migrate_arguments, endpoint_from_args, run_migrate
from migrator.errors import ExitCode, UsageError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    return parser.parse_args(["--from", "imap://a@src.example", "--to", "imaps://b%40corp@dst.example", *argv])


def test_prompt_only_when_interactive(monkeypatch):
    args = parse()
    with pytest.raises(UsageError, match="no password for source"):
        endpoint_from_args(args, "source", interactive=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-" + prompt.split()[0])
    ep = endpoint_from_args(args, "dest", interactive=True)
    assert ep.password.reveal() == "typed-dest" and ep.url.user == "b@corp" and ep.url.port == 993


def test_env_file_and_cafile(tmp_path, monkeypatch):
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    monkeypatch.setenv("SRC_PW", "from-env")
    args = parse("--from-password-env", "SRC_PW", "--to-password-file", str(pw), "--cafile", "/x/ca.pem",
                 "--to-cafile", "/y/ca.pem")
    src, dst = endpoint_from_args(args, "source", interactive=False), endpoint_from_args(args, "dest", interactive=False)
    assert (src.password.reveal(), dst.password.reveal()) == ("from-env", "from-file")
    assert (str(src.cafile), str(dst.cafile)) == ("/x/ca.pem", "/y/ca.pem")


def test_password_sources_are_exclusive():
    with pytest.raises(SystemExit):
        parse("--from-password-env", "A", "--from-password-file", "B")


def test_bad_input_exits_2(monkeypatch, capsys):
    monkeypatch.setenv("P", "x")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    parser = argparse.ArgumentParser()
    add_migrate_arguments(parser)
    bad_url = parser.parse_args(["--from", "ftp://a@h", "--to", "imap://b@h", "--from-password-env", "P",
                                 "--to-password-env", "P"])
    assert run_migrate(bad_url) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "scheme must be one of" in err and "not 'ftp'" in err
    no_password = parse("--from-password-env", "P")
    assert run_migrate(no_password) == ExitCode.USAGE
    assert run_migrate(parse("--connections", "0", "--from-password-env", "P", "--to-password-env", "P")) == ExitCode.USAGE
