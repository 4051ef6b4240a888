"""`python -m arcane`: the server in one process (arcane/serving/runner.py);
`python -m arcane migrate-db SOURCE TARGET`: a SQLite database copied into PostgreSQL;
`python -m arcane new-epoch [CODE ...]`: new stream epochs after a restore (arcane/migrate.py)."""

import sys

if sys.argv[1:2] == ["migrate-db"]:
    from arcane.migrate import main as migrate_main

    sys.exit(migrate_main(sys.argv[2:]))
if sys.argv[1:2] == ["new-epoch"]:
    from arcane.migrate import new_epoch_main

    sys.exit(new_epoch_main(sys.argv[2:]))

from arcane.serving.runner import main

sys.exit(main())
