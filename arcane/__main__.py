"""`python -m arcane`: the server in one process (arcane/serve.py)."""

import sys

from arcane.serve import main

sys.exit(main())
