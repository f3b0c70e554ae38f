"""``python -m migrator --from URL --to URL …`` = ``quirkmail migrate``, without the scenario
runner's imports (half the start-up time: crash tests start the engine many times)."""

import argparse
import sys

from migrator.cli import add_migrate_arguments, run_migrate

parser = argparse.ArgumentParser(prog="python -m migrator", description="Run the migration engine.")
add_migrate_arguments(parser)
sys.exit(run_migrate(parser.parse_args()))
