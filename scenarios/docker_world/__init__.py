"""quirkmail's provider world in Docker containers (docker/compose.yaml), without any registry.

    errors.py     typed errors (EngineUnavailable, ComposeError, BuildFailed, ServiceNotReady)
    engine.py     a pinged Docker client; starts dockerd (--iptables=false) when none runs
    base.py       the base image: debootstrap of Debian bookworm + docker import, cached by package list
    image.py      the compose file's images: a host-built wheelhouse + docker build, skipped when up to date
    compose.py    the compose subset we use, read into ServiceSpecs (pure) and containers.run arguments
    readiness.py  a published port is ready when it gives its protocol's greeting (judge: pure)
    world.py      DockerWorld: the services as containers, ready; down() removes them by label
    secret_files.py  a world's passwords as 0600 files in a private dir (the compose file's secrets)
    serve.py      `quirkmail serve --docker` and the test's shared path (WorldRequest, open_world)
    __main__.py   python3 -m scenarios.docker_world engine | base | image | down [ID | --all]
"""
