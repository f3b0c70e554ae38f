"""The Docker world's pure parts, no engine: the compose subset, readiness, engine/base helpers, errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scenarios.docker_world import base, engine, image, readiness
from scenarios.docker_world.__main__ import main as docker_world_main
from scenarios.docker_world.__main__ import parse_arguments
from scenarios.docker_world.compose import (
    PROJECT_LABEL,
    ComposeError,
    PortSpec,
    ReadyCheck,
    SecretMount,
    interpolate,
    load_compose,
    parse_compose,
    run_kwargs,
)
from scenarios.docker_world.errors import BuildFailed, EngineUnavailable, ServiceNotReady
from scenarios.docker_world.secret_files import SecretDir
from scenarios.docker_world.serve import COMPOSE_FILE, WorldRequest, check_arguments, compose_env

ENV = {"QUIRKMAIL_SECRETS": "/s"}


# docker/compose.yaml itself ---------------------------------------------------------------------


def test_the_compose_file_reads_into_three_services_on_free_loopback_ports():
    project = load_compose(COMPOSE_FILE, ENV)
    assert list(project.services) == ["world", "dovecot", "radicale"]
    world = project.services["world"]
    assert world.image == "quirkmail:local"
    assert world.build.context == COMPOSE_FILE.parent and world.build.dockerfile == "Dockerfile"
    assert world.ports == tuple(PortSpec("127.0.0.1", None, p) for p in (143, 110, 25, 8080))
    assert world.ready == (ReadyCheck(143, "imap"), ReadyCheck(110, "pop3"), ReadyCheck(25, "smtp"),
                           ReadyCheck(8080, "ews+http"))
    assert world.environment == {}  # no password in any container's environment
    assert "--profile=generic" in world.command and "--fixture=seed=1,messages=60,folders=6" in world.command
    assert "--password-file=/run/secrets/quirkmail_password" in world.command  # the password never on argv
    assert world.secrets == (SecretMount("quirkmail_password", Path("/s/quirkmail_password")),)
    assert project.services["dovecot"].entrypoint == ("/etc/quirkmail-dovecot/start.sh",)
    assert project.services["dovecot"].environment == {"DOVECOT_USER": "user",
                                                       "DOVECOT_PASSWORD_FILE": "/run/secrets/dovecot_password"}
    assert project.services["dovecot"].secrets == (SecretMount("dovecot_password", Path("/s/dovecot_password")),)
    assert project.services["radicale"].secrets == ()
    assert project.services["radicale"].ready == (ReadyCheck(5232, "dav+http"),)
    assert project.images() == {"quirkmail:local": world.build}  # one image for all three


def test_the_request_reaches_the_world_command_and_a_fixed_host_port_can_be_asked():
    request = WorldRequest(password="a", dest_password="b", profile="gmail", fixture="seed=3,messages=4", user="u")
    env = compose_env(request, {"QUIRKMAIL_IMAP_PORT": "1143", **ENV})
    assert "a" not in env.values() and "b" not in env.values()  # the passwords go in files, not variables
    world = load_compose(COMPOSE_FILE, env).services["world"]
    assert "--profile=gmail" in world.command and "--fixture=seed=3,messages=4" in world.command
    assert "--user=u" in world.command
    assert world.ports[0] == PortSpec("127.0.0.1", 1143, 143)


def test_a_missing_secrets_directory_is_named():
    with pytest.raises(ComposeError) as caught:
        load_compose(COMPOSE_FILE, {})
    assert str(caught.value) == (
        f"{COMPOSE_FILE}: secrets.quirkmail_password.file: "
        "variable QUIRKMAIL_SECRETS is required: a directory holding the password files"
    )
    assert caught.value.exit_code == 2


def test_run_kwargs_label_every_container_with_its_world():
    service = load_compose(COMPOSE_FILE, ENV).services["dovecot"]
    kwargs = run_kwargs(service, "quirkmail-abc123")
    assert kwargs["name"] == "quirkmail-abc123-dovecot"
    assert kwargs["ports"] == {"143/tcp": ("127.0.0.1", None), "110/tcp": ("127.0.0.1", None), "24/tcp": ("127.0.0.1", None)}
    assert kwargs["labels"][PROJECT_LABEL] == "quirkmail-abc123"
    assert kwargs["labels"]["quirkmail.service"] == "dovecot"
    assert kwargs["entrypoint"] == ["/etc/quirkmail-dovecot/start.sh"] and kwargs["command"] is None
    assert kwargs["detach"] is True and kwargs["init"] is True
    assert kwargs["volumes"] == {"/s/dovecot_password": {"bind": "/run/secrets/dovecot_password", "mode": "ro"}}
    assert all("PASSWORD" not in name or name.endswith("_FILE") for name in kwargs["environment"])


def test_a_worlds_secret_dir_is_private_and_removed(tmp_path):
    directory = SecretDir({"quirkmail_password": "pw1", "dovecot_password": "pw2"})
    try:
        assert stat.S_IMODE(directory.path.stat().st_mode) == 0o700
        assert sorted(p.name for p in directory.path.iterdir()) == ["dovecot_password", "quirkmail_password"]
        assert (directory.path / "quirkmail_password").read_bytes() == b"pw1"  # no newline added
        assert stat.S_IMODE((directory.path / "dovecot_password").stat().st_mode) == 0o600
    finally:
        directory.remove()
    assert not directory.path.exists()


@pytest.mark.parametrize(
    "argv, project, every",
    [(["down"], None, False), (["down", "quirkmail-abc123"], "quirkmail-abc123", False), (["down", "--all"], None, True)],
)
def test_down_takes_a_project_or_all(argv, project, every):
    args = parse_arguments(argv)
    assert (args.step, args.project, args.all) == ("down", project, every)


@pytest.mark.parametrize(
    "argv, message",
    [(["down", "quirkmail-abc123", "--all"], "not both"), (["engine", "quirkmail-abc123"], "engine takes no project"),
     (["image", "--all"], "image takes no project")],
)
def test_down_refuses_a_project_with_all_and_other_steps_any(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        docker_world_main(argv)  # refused before any engine is asked
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# the compose subset ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("$A-${A}", {"A": "x"}, "x-x"),
        ("${A:-d}|${A-d}", {"A": ""}, "d|"),
        ("${A:-d}|${A-d}", {}, "d|d"),
        ("$$A costs $${B}", {"A": "no"}, "$A costs ${B}"),
        ("${A:?}", {"A": "set"}, "set"),
        ("${MISSING}", {}, ""),
    ],
)
def test_interpolation_is_composes(text, env, expected):
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    "text, env, message",
    [("${A:?give A}", {"A": ""}, "variable A is required: give A"), ("${A?}", {}, "variable A is required: not set")],
)
def test_a_required_variable_names_itself(text, env, message):
    with pytest.raises(ValueError, match=message):
        interpolate(text, env)


def _service(body: str) -> str:
    return "services:\n  s:\n    image: i\n" + body


@pytest.mark.parametrize(
    "body, where, problem",
    [
        ("    volumes: [a:b]\n", "services.s", "unsupported key(s) volumes"),
        ("    ports: ['8080:80']\n", "services.s.ports[0]", "give the host address"),
        ("    ports: ['0.0.0.0::80']\n", "services.s.ports[0]", "publish on a loopback address only"),
        ("    ports: ['127.0.0.1::80/udp']\n", "services.s.ports[0]", "only tcp ports"),
        ("    ports: ['127.0.0.1::99999']\n", "services.s.ports[0]", "not a number from 1 to 65535"),
        ("    ports: ['127.0.0.1::80']\n    labels: {quirkmail.ready: '81=imap'}\n",
         "services.s.labels.quirkmail.ready", "container port 81 is not published"),
        ("    ports: ['127.0.0.1::80']\n    labels: {quirkmail.ready: '80=gopher'}\n",
         "services.s.labels.quirkmail.ready", "the kind must be one of"),
        ("    environment: 3\n", "services.s.environment", "expected a mapping or a list"),
        ("    command: {a: b}\n", "services.s.command", "expected a string or number, got dict"),
    ],
)
def test_bad_service_fields_are_refused_by_place(body, where, problem):
    with pytest.raises(ComposeError) as caught:
        parse_compose(_service(body), {}, file=Path("c.yaml"))
    assert caught.value.where == where
    assert problem in caught.value.problem


def test_top_level_and_shapes():
    for text, problem in [("services: {}\n", "at least one service"), ("- a\n", "at least one service"),
                          ("services: {s: {image: i}}\nvolumes: {}\n", "unsupported top-level key(s) volumes"),
                          ("services: {s: {command: x}}\n", "required"), ("a: [\n", "not YAML")]:
        with pytest.raises(ComposeError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            parse_compose(text, {})


def test_list_forms_strings_and_bare_variables():
    text = _service("    command: serve --user 'a b'\n    environment: [A=1, B, C]\n    labels: [k=v]\n"
                    "    build: ctx\n    x-note: ignored\n")
    service = parse_compose(text, {"B": "from-env"}, file=Path("/p/compose.yaml")).services["s"]
    assert service.command == ("serve", "--user", "a b")
    assert service.environment == {"A": "1", "B": "from-env"}  # C is unset: left out, as Compose does
    assert service.labels == {"k": "v"}
    assert service.build.context == Path("/p/ctx")


def test_secrets_are_files_relative_to_the_compose_file_and_named_by_services():
    text = "secrets:\n  a: {file: ./a.txt}\n  b: {file: /abs/b}\n" + _service("    secrets: [b, a]\n")
    service = parse_compose(text, {}, file=Path("/p/compose.yaml")).services["s"]
    assert service.secrets == (SecretMount("b", Path("/abs/b")), SecretMount("a", Path("/p/a.txt")))
    assert [m.target for m in service.secrets] == ["/run/secrets/b", "/run/secrets/a"]


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("secrets: {a: {environment: PW}}\n" + _service(""), "secrets.a", "only the file: form"),
        ("secrets: [a]\n" + _service(""), "secrets", "expected a mapping of secret names"),
        ("secrets: {a: {file: x}}\n" + _service("    secrets: [b]\n"), "services.s.secrets", "no top-level secret b"),
        ("secrets: {a: {file: x}}\n" + _service("    secrets: [{source: a}]\n"), "services.s.secrets", "short form"),
    ],
)
def test_bad_secrets_are_refused_by_place(text, where, problem):
    with pytest.raises(ComposeError) as caught:
        parse_compose(text, {}, file=Path("c.yaml"))
    assert caught.value.where == where
    assert problem in caught.value.problem


# readiness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, data, closed, expected",
    [
        ("imap", b"* OK [CAPABILITY IMAP4rev1] ready\r\n", False, (True, "* OK [CAPABILITY IMAP4rev1] ready")),
        ("imap", b"* OK [CAPAB", False, (False, "")),  # read more
        ("imap", b"", True, (False, "closed before a greeting")),  # Docker's proxy with nobody behind it
        ("pop3", b"* OK imap\r\n", False, (False, "expected a line starting '+OK', got b'* OK imap'")),
        ("lmtp", b"220 dovecot ready.\r\n", False, (True, "220 dovecot ready.")),
        ("dav+http", b"HTTP/1.0 302 Found\r\n", False, (True, "HTTP/1.0 302 Found")),
        ("smtp", b"421 busy", True, (False, "closed after b'421 busy'")),
    ],
)
def test_judge(kind, data, closed, expected):
    assert readiness.judge(kind, data, closed=closed) == expected


def test_judge_byte_by_byte_waits_for_the_line():
    greeting = b"+OK POP3 ready\r\n"
    verdicts = [readiness.judge("pop3", greeting[:n]) for n in range(len(greeting))]
    assert all(v == (False, "") for v in verdicts)
    assert readiness.judge("pop3", greeting + b"trailing") == (True, "+OK POP3 ready")


def test_probe_reads_a_real_imap_greeting_and_tells_a_wrong_kind():
    from scenarios.peers.process import free_ports
    from simulators.launcher import SimulatorWorld
    from simulators.profiles import load_profile
    from simulators.store import Store

    with SimulatorWorld(Store(), load_profile("generic")) as world:
        handle = world.start_imap()
        ready, line = readiness.probe("imap", handle.host, handle.port)
        assert ready and line.startswith("* OK")
        assert readiness.probe("smtp", handle.host, handle.port)[1].startswith("expected a line starting '220'")
    ready, why = readiness.probe("imap", "127.0.0.1", free_ports(1)[0], timeout=1)
    assert not ready and why.startswith("ConnectionRefusedError")


def test_wait_ready_retries_then_names_what_is_missing():
    now = [0.0]
    answers = {"a": iter([(False, "closed before a greeting"), (True, "* OK")])}
    targets = [readiness.Target("world", "imap", "127.0.0.1", 1), readiness.Target("dovecot", "pop3", "127.0.0.1", 2)]

    def probe(kind, host, port):
        return next(answers["a"]) if port == 1 else (False, "closed before a greeting")

    with pytest.raises(TimeoutError) as caught:
        readiness.wait_ready(targets, 1.0, probe_fn=probe, clock=lambda: now[0],
                             sleep=lambda s: now.__setitem__(0, now[0] + s), interval=0.5)
    assert str(caught.value) == "pop3 on 127.0.0.1:2 (dovecot): closed before a greeting"


def test_wait_ready_stops_when_a_container_died():
    with pytest.raises(RuntimeError) as caught:
        readiness.wait_ready([readiness.Target("dovecot", "imap", "127.0.0.1", 1)], 60,
                             probe_fn=lambda *a: (False, "refused"), alive=lambda s: "exited with status 89",
                             sleep=lambda s: None)
    assert caught.value.args == ("dovecot", "exited with status 89")


# engine, base, image ---------------------------------------------------------------------------


def test_connect_names_a_missing_socket_and_how_to_start_an_engine(tmp_path):
    with pytest.raises(EngineUnavailable) as caught:
        engine.connect(str(tmp_path / "docker.sock"))
    text = str(caught.value)
    assert text.startswith(f"no Docker engine at {tmp_path / 'docker.sock'}: the socket does not exist; ")
    assert "dockerd --iptables=false" in text and caught.value.exit_code == 3


def test_serve_docker_without_an_engine_exits_3_naming_the_socket(tmp_path, monkeypatch, capsys):
    from scenarios.cli import main

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setenv("PW", "secret-value")
    assert main(["serve", "--docker", "--profile", "generic", "--password-env", "PW"]) == 3
    err = capsys.readouterr().err
    assert f"no Docker engine at {tmp_path}/none.sock: the socket does not exist, and none can be started here: " \
           f"DOCKER_HOST names {tmp_path}/none.sock, an engine that is not ours to start" in err
    assert "secret-value" not in err


def test_start_refusal():
    assert engine.start_refusal("/var/run/docker.sock", is_root=True, dockerd="/usr/bin/dockerd") is None
    assert engine.start_refusal("/var/run/docker.sock", is_root=False, dockerd="/usr/bin/dockerd") == \
        "starting dockerd needs root"
    assert "apt-get install docker.io" in engine.start_refusal("/var/run/docker.sock", is_root=True, dockerd=None)
    assert "not ours to start" in engine.start_refusal("tcp://10.0.0.1:2375", is_root=True, dockerd="d")


def test_the_daemon_logs_last_error_and_whether_to_try_vfs():
    log = ('time="t" level=info msg="Starting up"\n'
           'time="t" level=error msg="failed to mount overlay: invalid argument" storage-driver=overlay2\n'
           'failed to start daemon: error initializing graphdriver: driver not supported\n')
    assert engine.last_error(log) == "error initializing graphdriver: driver not supported"
    assert engine.storage_driver_failure(engine.last_error(log))
    assert not engine.storage_driver_failure("pid file found, ensure docker is not running")
    assert engine.last_error('level=fatal msg="a \\"quoted\\" cause"') == 'a "quoted" cause'
    assert engine.last_error("level=info msg=fine") is None


def test_socket_path():
    assert engine.socket_path({}) == "/var/run/docker.sock"
    assert engine.socket_path({"DOCKER_HOST": "unix:///run/d.sock"}) == "/run/d.sock"


def test_mirror_from_deb822_and_one_line_sources():
    deb822 = ("Types: deb\nURIs: http://mirror.example/security\nSuites: bookworm-security\nComponents: main\n\n"
              "Types: deb-src deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n")
    assert base.mirror_from_sources([deb822]) == "http://mirror.example/debian"
    one_line = "# deb http://old.example/debian bookworm main\ndeb [arch=amd64] http://m.example/debian bookworm main\n"
    assert base.mirror_from_sources([one_line]) == "http://m.example/debian"
    assert base.mirror_from_sources(["Types: deb\nURIs: http://x\nSuites: bullseye\n"]) is None


def test_keys_change_with_what_goes_in():
    assert base.base_key() == base.base_key("bookworm", tuple(reversed(base.PACKAGES)))  # order-insensitive
    assert base.base_key() != base.base_key(packages=base.PACKAGES + ("vim",))
    files = [("a.py", b"1"), ("b.py", b"2")]
    assert image.content_key(files, "k") == image.content_key(list(reversed(files)), "k")
    assert image.content_key(files, "k") != image.content_key([("a.py", b"1"), ("b.py", b"3")], "k")
    assert image.content_key(files, "k") != image.content_key(files, "other base")


def test_error_texts_carry_the_last_lines():
    failed = BuildFailed("docker build quirkmail:local", "The command returned a non-zero code: 1",
                         "\n".join(f"line {n}" for n in range(40)))
    assert str(failed).splitlines()[0] == "docker build quirkmail:local failed: The command returned a non-zero code: 1"
    assert str(failed).splitlines()[1:] == [f"line {n}" for n in range(25, 40)]
    assert str(ServiceNotReady("dovecot", "its container exited with status 89")) == \
        "service 'dovecot' not ready: its container exited with status 89"


@pytest.mark.parametrize(
    "flags, message",
    [(["--store-dir", "d"], "does not take --store-dir"), (["--host", "0.0.0.0"], "does not take --host"),
     (["--fronts", "imap"], "does not take --fronts"),
     (["--profile", "my/profile.yaml"], "a built-in profile name")],
)
def test_serve_docker_refuses_what_the_containers_cannot_take(flags, message):
    from migrator.errors import UsageError
    from scenarios.cli import build_parser

    args = build_parser().parse_args(["serve", "--docker", "--profile", "generic", *flags])
    with pytest.raises(UsageError, match=message):
        check_arguments(args)


def test_the_content_key_covers_every_shipped_package():
    assert image.shipped_packages((image.REPO_ROOT / "pyproject.toml").read_text()) == \
        sorted(p.parent.name for p in image.REPO_ROOT.glob("*/__init__.py") if p.parent.name != "tests")
    text = '[tool.setuptools.packages.find]\ninclude = ["a*", "b.sub*", "c"]\n'
    assert image.shipped_packages(text) == ["a", "b", "c"]


@pytest.mark.peer
def test_docker_compose_reads_the_file_as_we_do():
    """The real Compose (Debian's docker-compose) agrees with our subset on what each service is."""
    import shutil
    import subprocess

    import yaml

    if shutil.which("docker-compose") is None:
        pytest.skip("needs docker-compose (apt-get install docker-compose)")
    env = {"PATH": "/usr/bin:/bin", **ENV, "QUIRKMAIL_PROFILE": "m365", "RADICALE_PORT": "15232"}
    done = subprocess.run(["docker-compose", "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    theirs = yaml.safe_load(done.stdout)["services"]
    ours = load_compose(COMPOSE_FILE, env).services
    assert sorted(theirs) == sorted(ours)
    for name, service in ours.items():
        assert theirs[name]["image"] == service.image
        assert tuple(theirs[name].get("command") or ()) == (service.command or ())
        assert tuple(theirs[name].get("entrypoint") or ()) == (service.entrypoint or ())
        assert (theirs[name].get("environment") or {}) == dict(service.environment)
        assert theirs[name]["labels"] == dict(service.labels)
        assert [s["source"] for s in theirs[name].get("secrets") or ()] == [m.name for m in service.secrets]
        assert theirs[name]["ports"] == [f"{p.host_ip}:{p.host_port or ''}:{p.container_port}/tcp" for p in service.ports]
    assert "--profile=m365" in ours["world"].command
    assert ours["radicale"].ports[0].host_port == 15232


def test_quirks_and_faults_go_to_the_simulators_serve_only():
    from scenarios.cli import build_parser
    from scenarios.docker_world.serve import serve_args

    args = build_parser().parse_args(["serve", "--docker", "--profile", "m365", "--quirk", "oauth-only",
                                      "--fault", "bye-mid-fetch:after_bytes=500"])
    check_arguments(args)  # accepted
    assert serve_args(args) == ("--quirk=oauth-only", "--fault=bye-mid-fetch:after_bytes=500")


def test_fixed_host_ports_become_the_compose_files_variables():
    request = WorldRequest(password="a", dest_password="b", host_ports={"QUIRKMAIL_SMTP_PORT": 2525})
    world = load_compose(COMPOSE_FILE, compose_env(request, ENV)).services["world"]
    assert [p.host_port for p in world.ports] == [None, None, 2525, None]
    assert [p.container_port for p in world.ports] == [143, 110, 25, 8080]
