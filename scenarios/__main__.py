"""``python -m scenarios`` = the ``quirkmail`` console script (handy when it is not installed)."""

import sys

from scenarios.cli import main

sys.exit(main())
