"""The engine's OAuth side: XOAUTH2 logins, secrets re-read at every connect, refusals classified,
post-login capabilities, and no token or password in logs, reports or exception texts."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from migrator.errors import AuthenticationFailed, ExitCode, OAuthTokenRejected, UsageError
from migrator.imapconn import close_quietly, connect, xoauth2_response
from migrator.replies import OAUTH_REJECTED, oauth_error, oauth_refusal
from migrator.sinks.imap import ImapSink
from migrator.sources.pop3 import Pop3Source
from migrator.urls import Endpoint, Secret, ServerURL, resolve_secret
from scenarios import credentials, runner
from scenarios.model import ScenarioError, load_scenario
from scenarios.runner import run_scenario
from simulators.imap.quirks_auth import OAuthTokenExpiry
from simulators.launcher import SimulatorWorld
from simulators.profiles import load_profile
from simulators.quirks import QuirkSpec
from simulators.store import INBOX, Store

LIBRARY = Path(__file__).resolve().parent.parent / "scenarios" / "library"
TOKEN = "ya29.Tok3n-not-for-logs"
GMAIL_JSON = b'{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}\n'


# Pure: classification --------------------------------------------------------------------------


def test_oauth_error_decodes_base64_or_plain_json():
    expected = {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"}
    assert oauth_error(base64.b64encode(GMAIL_JSON)) == expected
    assert oauth_error(GMAIL_JSON) == expected
    assert oauth_error(b"") is None
    assert oauth_error(b"not base64 !") is None
    assert oauth_error(base64.b64encode(b"[1, 2]")) is None  # JSON, but no report


def test_oauth_refusal_names_the_cause_and_quotes_only_the_report():
    text = oauth_refusal("[AUTHENTICATIONFAILED] Invalid credentials (Failure)",
                         {"status": "400", "schemes": "Bearer", "scope": "s", "token": TOKEN})
    assert text.startswith("[AUTHENTICATIONFAILED] Invalid credentials (Failure) (OAuth token expired or invalid;")
    assert "status 400, schemes Bearer, scope s" in text and TOKEN not in text
    assert OAUTH_REJECTED in oauth_refusal("NO AUTHENTICATE failed.")


# Secrets and URLs --------------------------------------------------------------------------------


def test_file_secret_is_read_again_at_every_reveal(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    secret = resolve_secret(file=path)
    assert secret.reveal() == "first" and str(secret) == repr(secret) == "***"
    path.write_text("second\n")
    assert secret.reveal() == "second"
    path.write_text("")  # a refresher caught mid-write: keep the last value
    assert secret.reveal() == "second"
    path.unlink()
    with pytest.raises(UsageError, match="cannot read password file"):
        secret.reveal()


def test_env_secret_is_read_again_at_every_reveal(monkeypatch):
    monkeypatch.setenv("QM_TEST_TOKEN", "one")
    secret = resolve_secret(env="QM_TEST_TOKEN")
    monkeypatch.setenv("QM_TEST_TOKEN", "two")
    assert secret.reveal() == "two"
    assert Secret("literal").reveal() == "literal"


def test_imap_url_takes_xoauth2_and_refuses_pop3_methods():
    assert ServerURL.parse("imaps://a@h?auth=xoauth2").auth == "xoauth2"
    with pytest.raises(UsageError, match="auth must be one of auto, xoauth2, not 'apop'"):
        ServerURL.parse("imap://a@h?auth=apop")


# Against the simulators ------------------------------------------------------------------------


@pytest.fixture
def world_of(tmp_path):
    worlds = []

    def make(*quirks: str, profile: str = "generic") -> SimulatorWorld:
        store = Store()
        store.add_account("alice", TOKEN).append(INBOX, b"Subject: x\r\n\r\ny\r\n")
        p = load_profile(profile).with_quirks([QuirkSpec.parse(q) for q in quirks])
        worlds.append(SimulatorWorld(store, p))
        return worlds[-1]

    yield make
    for w in worlds:
        w.stop()


def endpoint(url: str, secret: Secret) -> Endpoint:
    return Endpoint(ServerURL.parse(url + ("&" if "?" in url else "?") + "starttls=no"), secret)


def test_connect_with_xoauth2_reads_the_token_file_at_each_connect(world_of, tmp_path):
    world = world_of("oauth-token-expiry:after_logins=1")
    url = world.start_imap().url("alice") + "?auth=xoauth2"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ep = endpoint(url, resolve_secret(file=token_file))
    client, _ = connect(ep, role="source")
    close_quietly(client)
    with pytest.raises(OAuthTokenRejected, match="OAuth token expired or invalid") as refused:
        connect(ep, role="source")
    assert refused.value.exit_code == ExitCode.AUTHENTICATION and TOKEN not in str(refused.value)
    [quirk] = world.quirks("oauth-token-expiry")
    fresh = quirk.issue("alice")
    token_file.write_text(fresh + "\n")  # rotated: the next connect logs in again
    client, _ = connect(ep, role="source")
    close_quietly(client)
    assert fresh not in str(refused.value)


def test_error_continuation_is_answered_and_its_json_reported(world_of):
    world = world_of("xoauth2-error-continuation", profile="gmail")
    ep = endpoint(world.start_imap().url("alice") + "?auth=xoauth2", Secret("stale-" + TOKEN))
    with pytest.raises(OAuthTokenRejected) as refused:
        connect(ep, role="source")
    text = str(refused.value)
    assert "Invalid credentials (Failure)" in text
    assert "the provider reports status 400, schemes Bearer, scope https://mail.google.com/" in text
    assert TOKEN not in text


def test_xoauth2_asked_of_a_server_without_it_says_so(world_of):
    world = world_of()  # generic: AUTH=PLAIN AUTH=LOGIN
    with pytest.raises(AuthenticationFailed, match=r"does not offer AUTH=XOAUTH2 \(it offers AUTH=LOGIN AUTH=PLAIN\)") as refused:
        connect(endpoint(world.start_imap().url("alice") + "?auth=xoauth2", Secret(TOKEN)), role="source")
    assert not isinstance(refused.value, OAuthTokenRejected)


def test_sink_uses_the_post_login_capabilities_only(world_of):
    world = world_of("capabilities-change-after-auth:appear=APPENDLIMIT=1234,disappear=UIDPLUS|MULTIAPPEND")
    sink = ImapSink(endpoint(world.start_imap().url("alice"), Secret(TOKEN)))
    try:
        assert sink.append_limit == 1234
        assert not sink.multiappend and "UIDPLUS" not in sink.caps and "AUTH=PLAIN" not in sink.caps
        assert "MOVE" in sink.caps and "SPECIAL-USE" in sink.caps  # post-login only in generic
    finally:
        sink.close()


def test_pop3_xoauth2_two_step_and_a_rejected_token(world_of):
    world = world_of("xoauth2-two-step-pop3", "oauth-token-expiry:after_logins=1", profile="m365")
    ep = endpoint(world.start_pop3().url("alice") + "?auth=xoauth2", Secret(TOKEN))
    source = Pop3Source(ep)
    assert source.auth_method == "xoauth2"
    source.abandon()
    with pytest.raises(OAuthTokenRejected, match="Authentication failure: unknown user name or bad password"):
        Pop3Source(ep)


# Whole runs -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_token_or_password_in_logs_report_or_errors(caplog, monkeypatch):
    """The accounts' passwords (their first tokens) and every issued token stay out of the logs,
    the scenario results (reports, error texts) of a rescued, a stale and a refused run."""
    secrets: list[str] = []
    real_issue, real_new_user = OAuthTokenExpiry.issue, runner._new_user

    def issue(self, user):
        secrets.append(real_issue(self, user))
        return secrets[-1]

    def new_user(role):
        user, password = real_new_user(role)
        secrets.append(password)
        return user, password

    monkeypatch.setattr(OAuthTokenExpiry, "issue", issue)
    monkeypatch.setattr(runner, "_new_user", new_user)
    caplog.set_level(logging.DEBUG)
    results = [run_scenario(load_scenario(LIBRARY / "quirks" / f"{name}.yaml"))
               for name in ("oauth-token-expiry", "oauth-token-expiry-stale", "xoauth2-error-continuation")]
    assert [r.passed for r in results] == [True, True, True], [r.failures for r in results]
    report = results[1].runs[0].report
    assert report["login_refused"] and OAUTH_REJECTED in report["aborted"]
    assert OAUTH_REJECTED in results[2].runs[0].error and "status 400" in results[2].runs[0].error
    assert len(secrets) == 7  # 3 sources + 3 destinations + the one refreshed token
    for text in [caplog.text] + [r.model_dump_json() for r in results]:
        for secret in secrets:
            assert secret not in text
            assert base64.b64encode(xoauth2_response("alice", secret)).decode() not in text  # as sent
    assert "AUTHENTICATE **REDACTED**" in caplog.text  # imapclient's wire log was on, and hid it


def test_rotation_rescues_only_because_the_secret_is_re_read(monkeypatch):
    """Damage proof: a secret read once (as before) fails the rotated-token scenario with exit 4."""
    monkeypatch.setattr(credentials, "resolve_secret",
                        lambda *, file: Secret(Path(file).read_text(encoding="utf-8").strip()))
    result = run_scenario(load_scenario(LIBRARY / "quirks" / "oauth-token-expiry.yaml"))
    assert not result.passed
    assert "run 1 ended with exit code 4, expected 0" in "\n".join(result.failures)


def test_capability_scenario_catches_an_engine_that_ignores_appendlimit():
    s = load_scenario(LIBRARY / "quirks" / "capabilities-change-after-auth.yaml")
    options = {**s.migration.options, "disable": ["appendlimit-skip"]}
    result = run_scenario(s.model_copy(update={"migration": s.migration.model_copy(update={"options": options})}))
    assert not result.passed
    assert any("too-large" in f for f in result.failures), result.failures


def test_rotate_token_needs_xoauth2_and_the_expiry_quirk(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {server: simulator, rotate_token: true}\n")
    with pytest.raises(ScenarioError, match="rotate_token: rotates an OAuth token file: needs auth: xoauth2"):
        load_scenario(bad)
    bad.write_text("source: {server: simulator, auth: xoauth2, rotate_token: true, quirks: [oauth-only]}\n")
    result = None
    with pytest.raises(ScenarioError, match="needs the oauth-token-expiry quirk"):
        result = run_scenario(load_scenario(bad))
    assert result is None


@pytest.mark.peer  # the destination is Dovecot
def test_pop3_reconnect_with_a_stale_token_ends_with_exit_4():
    s = load_scenario(LIBRARY / "pop3" / "oauth-token-expiry-pop3.yaml")
    result = run_scenario(s.model_copy(update={"source": s.source.model_copy(update={"rotate_token": False})}))
    if result.skipped:
        pytest.skip(result.skipped)
    [run] = result.runs
    assert run.exit_code == ExitCode.AUTHENTICATION
    assert OAUTH_REJECTED in run.report["login_refused"]
    assert "Authentication failure: unknown user name or bad password." in run.report["login_refused"]
    assert run.report["pop3"]["reconnects"] == 1


def test_expect_error_reads_the_error_then_the_report():
    from scenarios.expectations import RunRecord, why_stopped

    assert why_stopped(RunRecord(run=1, exit_code=4, seconds=0, error="AuthenticationFailed: x")) == "AuthenticationFailed: x"
    record = RunRecord(run=1, exit_code=4, seconds=0, report={"login_refused": "y", "aborted": "z"})
    assert why_stopped(record) == "y"
    assert why_stopped(RunRecord(run=1, exit_code=0, seconds=0, report={})) == ""


def test_stale_scenario_fails_when_the_error_is_not_the_oauth_one():
    s = load_scenario(LIBRARY / "quirks" / "oauth-token-expiry-stale.yaml")
    s = s.model_copy(update={"expect": s.expect.model_copy(update={"error": "wrong password"})})
    result = run_scenario(s)
    assert result.failures == [f"the last run does not say 'wrong password': {result.runs[0].report['login_refused']}"]


def test_pop3_source_trusts_the_post_login_capa(world_of):
    world = world_of("capabilities-change-after-auth:disappear=TOP|PIPELINING")
    source = Pop3Source(endpoint(world.start_pop3().url("alice"), Secret(TOKEN)))
    try:
        assert "TOP" in source.caps_before and "PIPELINING" in source.caps_before
        assert not source.has_top and not source.pipelining and "UIDL" in source.caps
    finally:
        source.abandon()
