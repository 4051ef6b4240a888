"""`python -m arcane`: the operator's command line (arcane/cli.py); without a command, the
server in one process, as `python -m arcane serve`."""

import sys

from arcane.cli import main

sys.exit(main())
