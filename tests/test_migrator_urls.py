"""migrator.urls: URL parsing, secrets that never leak, password sources."""

from pathlib import Path

import pytest

from migrator.errors import ExitCode, UsageError
from migrator.urls import Endpoint, Secret, ServerURL, resolve_secret


def test_defaults_and_ports():
    u = ServerURL.parse("imap://alice@mail.example")
    assert (u.scheme, u.host, u.port, u.user, u.starttls, u.tls_verify) == ("imap", "mail.example", 143, "alice", "auto", True)
    s = ServerURL.parse("imaps://bob@mail.example")
    assert s.port == 993 and s.implicit_tls
    assert ServerURL.parse("imap://a@h:10143").port == 10143


def test_query_options_and_escaped_user():
    u = ServerURL.parse("imap://alice%40corp.example@127.0.0.1:2143?starttls=required&tls_verify=no")
    assert u.user == "alice@corp.example"
    assert u.starttls == "required" and u.tls_verify is False
    assert u.display() == "imap://alice%40corp.example@127.0.0.1:2143"
    assert ServerURL.parse(u.display()).user == "alice@corp.example"


@pytest.mark.parametrize(
    "text, part",
    [
        ("ftp://a@h", "scheme"),
        ("imap://h", "no user"),
        ("imap://a@", "no host"),
        ("imap://a@h?starttls=maybe", "starttls"),
        ("imap://a@h?colour=red", "unknown parameter"),
        ("imap://a@h:99999", "bad server URL"),
        ("imaps://a@h?starttls=required", "imaps"),
    ],
)
def test_bad_urls_name_the_part(text, part):
    with pytest.raises(UsageError, match=part) as info:
        ServerURL.parse(text)
    assert info.value.exit_code == ExitCode.USAGE


def test_password_in_url_is_refused_without_echoing_it():
    with pytest.raises(UsageError) as info:
        ServerURL.parse("imap://alice:hunter2@h")
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_secret_never_shows():
    s = Secret("hunter2")
    e = Endpoint(ServerURL.parse("imap://a@h"), s)
    for text in (str(s), repr(s), repr(e), str(e), f"{s}"):
        assert "hunter2" not in text
    assert s.reveal() == "hunter2"


def test_resolve_from_env_file_and_prompt(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QM_PW", "from-env")
    assert resolve_secret(env="QM_PW").reveal() == "from-env"
    f = tmp_path / "pw"
    f.write_text("from file  \n")
    assert resolve_secret(file=f).reveal() == "from file  "  # only the line end is stripped
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed")
    assert resolve_secret(prompt="pw: ").reveal() == "typed"


def test_resolve_errors_are_usage_errors(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("QM_MISSING", raising=False)
    with pytest.raises(UsageError, match="QM_MISSING"):
        resolve_secret(env="QM_MISSING")
    with pytest.raises(UsageError, match="nope"):
        resolve_secret(file=tmp_path / "nope")
    with pytest.raises(UsageError):
        resolve_secret()
