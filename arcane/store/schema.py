"""The schema, as numbered migrations per backend: SQLite's `user_version`, PostgreSQL's
`schema_version` table, count those applied. Both hold the same tables and columns."""

from __future__ import annotations

# The game at the table (docs/realtime.md): a turn's deadline (ARCANE_TURN_TIMEOUT), found
# by the sweep through its index; each turn's hidden trap and its resolution, kept for the
# recap; the votes to skip an absent player; the game a finished one was replayed as.
_TABLE_TALK = """
    ALTER TABLE games ADD COLUMN turn_deadline REAL;
    ALTER TABLE games ADD COLUMN rematch_code TEXT;
    CREATE INDEX games_due ON games (turn_deadline) WHERE turn_deadline IS NOT NULL;
    ALTER TABLE scenarios ADD COLUMN trap TEXT;
    ALTER TABLE scenarios ADD COLUMN resolution TEXT;
    CREATE TABLE skip_votes (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        voter_id TEXT NOT NULL,
        PRIMARY KEY (game_code, turn_number, target_id, voter_id)
    );
    """

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE games (
        code TEXT PRIMARY KEY,
        phase TEXT NOT NULL,
        max_players INTEGER NOT NULL,
        turn_number INTEGER NOT NULL DEFAULT 0,
        party_trust INTEGER NOT NULL,
        npcs TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        log_floor INTEGER NOT NULL DEFAULT 0,
        finished_reason TEXT,
        created_at REAL NOT NULL
    );
    CREATE TABLE players (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        is_host INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL,
        player_class TEXT,
        divine_favor TEXT,
        questions TEXT,
        joined_at REAL NOT NULL,
        PRIMARY KEY (game_code, player_id)
    ) WITHOUT ROWID;
    CREATE TABLE interrogation_answers (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        answer_id TEXT NOT NULL,
        answered_at REAL NOT NULL,
        PRIMARY KEY (game_code, player_id, question_id)
    ) WITHOUT ROWID;
    CREATE TABLE scenarios (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        scenario_id TEXT NOT NULL,
        theme TEXT NOT NULL,
        title TEXT NOT NULL,
        public_scene TEXT NOT NULL,
        options TEXT NOT NULL,
        whispers TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, turn_number)
    ) WITHOUT ROWID;
    CREATE TABLE choices (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        player_id TEXT NOT NULL,
        option_id TEXT,
        text TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, turn_number, player_id)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        game_code TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        audience TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (game_code, seq)
    ) WITHOUT ROWID;
    """,
    # The log in the order it is appended, found by game through an index. Keyed by
    # (game_code, seq) itself, a commit of chats from 250 games rewrote 250 of the table's
    # pages, one per game; appended, their rows share a few pages, and only the index's
    # small entries are spread out. A batch's INSERT and COMMIT cost about half the CPU.
    """
    CREATE TABLE events_appended (
        id INTEGER PRIMARY KEY,
        game_code TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        audience TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    INSERT INTO events_appended (game_code, seq, event, audience, payload, created_at)
        SELECT game_code, seq, event, audience, payload, created_at FROM events ORDER BY game_code, seq;
    DROP TABLE events;
    ALTER TABLE events_appended RENAME TO events;
    CREATE UNIQUE INDEX events_by_game ON events (game_code, seq);
    """,
    # When each seat was last used (by its token or its cookie): its credentials expire
    # ARCANE_TOKEN_TTL after that (GameService.authenticate). Seats from before start now,
    # rather than all expiring at the upgrade.
    """
    ALTER TABLE players ADD COLUMN seen_at REAL NOT NULL DEFAULT 0;
    UPDATE players SET seen_at = CAST(strftime('%s', 'now') AS REAL);
    """,
    # Each game's stream has an epoch, sent with every cursor: a new one after a reset or a
    # restore (`python -m arcane new-epoch`) turns every older cursor into a snapshot.
    """
    ALTER TABLE games ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
    UPDATE games SET epoch = lower(hex(randomblob(4)));
    """,
    _TABLE_TALK,
    # A finished game its players chose to show anyone (its replay, /games/<code>/replay).
    "ALTER TABLE games ADD COLUMN public INTEGER NOT NULL DEFAULT 0;",
)


# The same tables as SQLite's after its migrations: timestamps as double precision (SQLite's
# REAL), seqs as bigint, the log appended in order and found by game through its index.
POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE games (
        code TEXT PRIMARY KEY,
        phase TEXT NOT NULL,
        max_players INTEGER NOT NULL,
        turn_number INTEGER NOT NULL DEFAULT 0,
        party_trust INTEGER NOT NULL,
        npcs TEXT NOT NULL,
        last_seq BIGINT NOT NULL DEFAULT 0,
        log_floor BIGINT NOT NULL DEFAULT 0,
        finished_reason TEXT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE players (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        is_host INTEGER NOT NULL DEFAULT 0,
        position INTEGER NOT NULL,
        player_class TEXT,
        divine_favor TEXT,
        questions TEXT,
        joined_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (game_code, player_id)
    );
    CREATE TABLE interrogation_answers (
        game_code TEXT NOT NULL,
        player_id TEXT NOT NULL,
        question_id TEXT NOT NULL,
        answer_id TEXT NOT NULL,
        answered_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (game_code, player_id, question_id)
    );
    CREATE TABLE scenarios (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        scenario_id TEXT NOT NULL,
        theme TEXT NOT NULL,
        title TEXT NOT NULL,
        public_scene TEXT NOT NULL,
        options TEXT NOT NULL,
        whispers TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (game_code, turn_number)
    );
    CREATE TABLE choices (
        game_code TEXT NOT NULL,
        turn_number INTEGER NOT NULL,
        player_id TEXT NOT NULL,
        option_id TEXT,
        text TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (game_code, turn_number, player_id)
    );
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        game_code TEXT NOT NULL,
        seq BIGINT NOT NULL,
        event TEXT NOT NULL,
        audience TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE UNIQUE INDEX events_by_game ON events (game_code, seq);
    """,
    # As SQLite's migration 4.
    """
    ALTER TABLE games ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
    UPDATE games SET epoch = substr(md5(random()::text || code), 1, 8);
    """,
    # As SQLite's migration 5.
    _TABLE_TALK.replace(" REAL", " DOUBLE PRECISION"),
    # As SQLite's migration 6.
    "ALTER TABLE games ADD COLUMN public INTEGER NOT NULL DEFAULT 0;",
)
