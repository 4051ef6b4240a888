"""`python -m arcane`: the server in one process (arcane/serving/runner.py)."""

import sys

from arcane.serving.runner import main

sys.exit(main())
