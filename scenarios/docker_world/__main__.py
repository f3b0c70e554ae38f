"""python3 -m scenarios.docker_world engine | base | image | down — the steps of `serve --docker`, one at a time.

    engine   make sure a Docker engine answers (start dockerd when none runs); print its version
    base     the debootstrap base image (quirkmail-base:bookworm), made when missing
    image    every image docker/compose.yaml builds, made when out of date
    down     remove the containers of every quirkmail world on the engine (a killed serve --docker's)

Exit codes as quirkmail's: 0 done, 2 a bad compose file, 3 no engine or a failed build.
"""

from __future__ import annotations

import argparse
import sys
import time

from migrator.errors import MigratorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scenarios.docker_world", description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("engine", "base", "image", "down"))
    args = parser.parse_args(argv)
    from scenarios.docker_world.engine import ensure_engine

    started = time.monotonic()
    try:
        client = ensure_engine()
        if args.step == "engine":
            print(f"Docker engine {client.version()['Version']} ({client.info()['Driver']} storage)")
        elif args.step == "down":
            from scenarios.docker_world.compose import PROJECT_LABEL

            for container in client.containers.list(all=True, filters={"label": PROJECT_LABEL}):
                container.remove(force=True)
                print(f"removed {container.name}")
        elif args.step == "base":
            from scenarios.docker_world.base import ensure_base

            print(ensure_base(client))
        else:
            import os

            from scenarios.docker_world.compose import load_compose
            from scenarios.docker_world.image import ensure_images
            from scenarios.docker_world.serve import COMPOSE_FILE

            # Build-only: the passwords the file requires are not needed for that.
            env = {"QUIRKMAIL_PASSWORD": "-", "DOVECOT_PASSWORD": "-", **os.environ}
            project = load_compose(COMPOSE_FILE, env)
            ensure_images(client, project)
            print(", ".join(project.images()))
    except MigratorError as exc:
        print(f"docker_world {args.step}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"{args.step}: {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
