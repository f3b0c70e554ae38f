"""python3 -m scenarios.docker_world engine | base | image | down [PROJECT | --all] — the steps of `serve --docker`, one at a time.

    engine   make sure a Docker engine answers (start dockerd when none runs); print its version
    base     the debootstrap base image (quirkmail-base:bookworm), made when missing
    image    every image docker/compose.yaml builds, made when out of date
    down     remove the containers of world PROJECT (a killed serve --docker's: it printed the id);
             without PROJECT list the worlds on the engine; --all removes every quirkmail world

Exit codes as quirkmail's: 0 done, 2 a bad compose file, 3 no engine or a failed build.
"""

from __future__ import annotations

import argparse
import sys
import time

from migrator.errors import MigratorError


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The step and, for down, which world (argparse's exit 2 on a bad combination; no engine needed)."""
    parser = argparse.ArgumentParser(prog="python3 -m scenarios.docker_world", description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("engine", "base", "image", "down"))
    parser.add_argument("project", nargs="?", help="down: the world's project id (quirkmail-xxxxxx)")
    parser.add_argument("--all", action="store_true", help="down: every quirkmail world on the engine")
    args = parser.parse_args(argv)
    if args.step != "down" and (args.project or args.all):
        parser.error(f"{args.step} takes no project and no --all")
    if args.project and args.all:
        parser.error("down takes a project id or --all, not both")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    from scenarios.docker_world.engine import ensure_engine

    started = time.monotonic()
    try:
        client = ensure_engine()
        if args.step == "engine":
            print(f"Docker engine {client.version()['Version']} ({client.info()['Driver']} storage)")
        elif args.step == "down":
            return down(client, args.project, every=args.all)
        elif args.step == "base":
            from scenarios.docker_world.base import ensure_base

            print(ensure_base(client))
        else:
            import os

            from scenarios.docker_world.compose import load_compose
            from scenarios.docker_world.image import ensure_images
            from scenarios.docker_world.serve import COMPOSE_FILE

            # Build-only: the secret files the file names are not needed for that.
            env = {"QUIRKMAIL_SECRETS": "/nonexistent", **os.environ}
            project = load_compose(COMPOSE_FILE, env)
            ensure_images(client, project)
            print(", ".join(project.images()))
    except MigratorError as exc:
        print(f"docker_world {args.step}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    print(f"{args.step}: {time.monotonic() - started:.1f} s")
    return 0


def down(client, project: str | None, *, every: bool) -> int:
    """Remove one world (or, with ``every``, all); with neither, list the worlds."""
    from scenarios.docker_world.world import remove_world, world_ids

    if project is None and not every:
        worlds = world_ids(client)
        for project_id, names in sorted(worlds.items()):
            print(f"{project_id}: {', '.join(sorted(names))}")
        print("down: name a project id (or --all) to remove its containers" if worlds else
              "no quirkmail world on this engine", file=sys.stderr)
        return 0
    removed = remove_world(client, None if every else project)
    for name in removed:
        print(f"removed {name}")
    if project is not None and not removed:
        print(f"down: no container of world {project} (python3 -m scenarios.docker_world down lists them)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
