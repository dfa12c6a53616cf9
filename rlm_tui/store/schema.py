"""Opening the database: WAL mode, and named, ordered migrations recorded in a table."""

from __future__ import annotations

import datetime
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .database import Database

MIGRATIONS_TABLE = "_rlm_tui_migrations"
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: list[Callable[[Database], None]] = []
migration = MIGRATIONS.append


class StoreError(Exception):
    """A store problem the user can act on; its message is always one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def default_db_path() -> Path:
    """$RLM_TUI_DB, or rlm-tui.db in the current directory."""
    return Path(os.environ.get("RLM_TUI_DB") or "rlm-tui.db").expanduser()


def open_db(path: str | Path, *, create: bool = True) -> Database:
    """Open (or create) an rlm-tui database in WAL mode with every migration applied."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a directory; pass a file path with --db")
    if not create and not path.exists():
        raise StoreError(f"{path} does not exist; pass another --db or start a run first")
    read_only = not create and not _writable(path)
    if create:
        _check_writable(path)
    try:
        db = Database(_read_only(path) if read_only else path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}; pass another --db") from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = [t for t in db.table_names() if not t.startswith("sqlite_")]
        if tables and MIGRATIONS_TABLE not in tables:
            raise StoreError(
                f"{path} is not an rlm-tui database (it has tables {', '.join(tables[:5])}); pass another --db"
            )
        if read_only:
            if _pending(db):
                raise StoreError(f"{path} is read-only and from an older rlm-tui; open it once where it is writable")
            return db
        db.enable_wal()
        # synchronous=NORMAL is crash-safe in WAL mode; it skips an fsync per commit
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db)
    except sqlite3.DatabaseError as exc:
        db.close()
        if "malformed" in str(exc):
            raise StoreError(
                f"{path} is damaged ({exc}); pass another --db, or recover what it holds with `sqlite3 {path} .recover`"
            ) from exc
        raise StoreError(f"{path} is not an rlm-tui database ({exc}); pass another --db") from exc
    except StoreError:
        db.close()
        raise
    return db


def _check_writable(path: Path) -> None:
    """A one-line reason when a database cannot be written or created at `path`."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise StoreError(f"cannot create {path}: the directory {folder} does not exist; pass another --db")
    if path.exists() and not _writable(path):
        raise StoreError(
            f"{path} is read-only (SQLite needs to write the file and its directory {folder}); pass a writable --db"
        )
    if not path.exists() and not os.access(folder, os.W_OK):
        raise StoreError(f"cannot create {path}: the directory {folder} is read-only; pass another --db")


def _writable(path: Path) -> bool:
    """Whether SQLite can write here: the file, and its directory for the WAL and journal files."""
    return os.access(path, os.W_OK) and os.access(path.parent if str(path.parent) else Path("."), os.W_OK)


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection for reading a database we may not write (a read-only mount, another user's file)."""
    uri = f"file:{path.resolve()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:  # a WAL database whose -shm cannot be created: read it as a snapshot
        return sqlite3.connect(f"file:{path.resolve()}?immutable=1", uri=True)


def applied_migrations(db: Database) -> list[str]:
    """Names of the migrations recorded in this database, in the order they were applied."""
    if MIGRATIONS_TABLE not in db.table_names():
        return []
    return [row[0] for row in db.execute(f"SELECT name FROM [{MIGRATIONS_TABLE}] ORDER BY rowid").fetchall()]


def migrate(db: Database) -> None:
    """Apply every migration not yet recorded, all in one transaction."""
    if _pending(db):
        # IMMEDIATE takes the write lock first, so two processes opening a new file never both migrate
        with db.atomic("BEGIN IMMEDIATE"):
            for fn in _pending(db):
                fn(db)
                db.execute(f"INSERT INTO [{MIGRATIONS_TABLE}] (name, applied_at) VALUES (?, ?)", [fn.__name__, _now()])


def _pending(db: Database) -> list[Callable[[Database], None]]:
    done = set(applied_migrations(db))
    return [fn for fn in MIGRATIONS if fn.__name__ not in done]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


# The DDL is the text sqlite-utils wrote for the first databases, so that old and new files hold one schema
@migration
def m001_migrations_table(db: Database) -> None:
    db.execute(f'''CREATE TABLE IF NOT EXISTS "{MIGRATIONS_TABLE}" (
   "name" TEXT PRIMARY KEY,
   "applied_at" TEXT
)''')


@migration
def m002_runs_rollouts_events(db: Database) -> None:
    db.execute("""CREATE TABLE "runs" (
   "id" TEXT PRIMARY KEY,
   "env" TEXT,
   "mode" TEXT,
   "model" TEXT,
   "sub_model" TEXT,
   "num_rollouts" INTEGER,
   "config" TEXT,
   "started" REAL,
   "finished" REAL,
   "status" TEXT,
   "error" TEXT,
   "pid" INTEGER,
   "hostname" TEXT
)""")
    db.execute("""CREATE TABLE "rollouts" (
   "id" TEXT PRIMARY KEY,
   "run_id" TEXT REFERENCES "runs"("id"),
   "idx" INTEGER,
   "example_id" TEXT,
   "info" TEXT,
   "target" TEXT,
   "status" TEXT,
   "stop_reason" TEXT,
   "reward" REAL,
   "answer" TEXT,
   "metrics" TEXT,
   "error" TEXT,
   "started" REAL,
   "finished" REAL
)""")
    _index(db, "rollouts", "run_id", "idx")
    # AUTOINCREMENT keeps seq strictly increasing, so a tail's after_seq never sees a reused number
    db.execute(
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            run_id TEXT NOT NULL,
            rollout_id TEXT,
            parent_id TEXT,
            kind TEXT NOT NULL,
            ts REAL NOT NULL,
            data TEXT NOT NULL
        )"""
    )
    _index(db, "events", "run_id", "seq")
    _index(db, "events", "rollout_id", "seq")
    _index(db, "events", "parent_id")


@migration
def m003_commands(db: Database) -> None:
    # Operator commands for a running engine, from the app or `attach` in another process
    db.execute("""CREATE TABLE "commands" (
   "id" TEXT PRIMARY KEY,
   "run_id" TEXT,
   "rollout_id" TEXT,
   "action" TEXT,
   "text" TEXT,
   "created" REAL,
   "taken" REAL
)""")
    _index(db, "commands", "run_id", "taken")


@migration
def m004_grids(db: Database) -> None:
    # A grid (rlm-tui ablate) groups runs; its spec lets an interrupted grid resume
    db.execute("""CREATE TABLE "grids" (
   "name" TEXT PRIMARY KEY,
   "created" REAL,
   "spec" TEXT
)""")


def _index(db: Database, table: str, *columns: str) -> None:
    quoted = ", ".join(f'"{c}"' for c in columns)
    db.execute(f'CREATE INDEX "idx_{table}_{"_".join(columns)}"\n    ON "{table}" ({quoted})')
