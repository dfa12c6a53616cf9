"""Opening the database: WAL mode, and named, ordered migrations recorded in a table."""

from __future__ import annotations

import datetime
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

MIGRATIONS_TABLE = "_rlm_tui_migrations"
BUSY_TIMEOUT_MS = 5000

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []
migration = MIGRATIONS.append


class StoreError(Exception):
    """A store problem the user can act on; its message is always one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def default_db_path() -> Path:
    """$RLM_TUI_DB, or rlm-tui.db in the current directory."""
    return Path(os.environ.get("RLM_TUI_DB") or "rlm-tui.db").expanduser()


def open_db(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
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
        db = sqlite_utils.Database(_read_only(path) if read_only else path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}; pass another --db") from exc
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        tables = [t for t in db.table_names() if not t.startswith("sqlite_")]
        if tables and MIGRATIONS_TABLE not in tables:
            raise StoreError(f"{path} is not an rlm-tui database (it has tables {', '.join(tables[:5])}); pass another --db")
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
            raise StoreError(f"{path} is damaged ({exc}); pass another --db, or recover what it holds with "
                             f"`sqlite3 {path} .recover`") from exc
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
        raise StoreError(f"{path} is read-only (SQLite needs to write the file and its directory {folder}); "
                         "pass a writable --db")
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


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations recorded in this database, in the order they were applied."""
    if MIGRATIONS_TABLE not in db.table_names():
        return []
    return [row[0] for row in db.execute(f"SELECT name FROM [{MIGRATIONS_TABLE}] ORDER BY rowid").fetchall()]


def migrate(db: sqlite_utils.Database) -> None:
    """Apply every migration not yet recorded, all in one transaction."""
    if _pending(db):
        # IMMEDIATE takes the write lock first, so two processes opening a new file never both migrate
        db.execute("BEGIN IMMEDIATE")
        try:
            for fn in _pending(db):
                fn(db)
                db[MIGRATIONS_TABLE].insert({"name": fn.__name__, "applied_at": _now()})
        except BaseException:
            db.rollback()
            raise
        db.commit()


def _pending(db: sqlite_utils.Database) -> list[Callable[[sqlite_utils.Database], None]]:
    done = set(applied_migrations(db))
    return [fn for fn in MIGRATIONS if fn.__name__ not in done]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


@migration
def m001_migrations_table(db: sqlite_utils.Database) -> None:
    db[MIGRATIONS_TABLE].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)


@migration
def m002_runs_rollouts_events(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": str, "env": str, "mode": str, "model": str, "sub_model": str, "num_rollouts": int,
            "config": str, "started": float, "finished": float, "status": str, "error": str,
            "pid": int, "hostname": str,
        },
        pk="id",
    )
    db["rollouts"].create(
        {
            "id": str, "run_id": str, "idx": int, "example_id": str, "info": str, "target": str,
            "status": str, "stop_reason": str, "reward": float, "answer": str, "metrics": str,
            "error": str, "started": float, "finished": float,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["rollouts"].create_index(["run_id", "idx"])
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
    db["events"].create_index(["run_id", "seq"])
    db["events"].create_index(["rollout_id", "seq"])
    db["events"].create_index(["parent_id"])


@migration
def m003_commands(db: sqlite_utils.Database) -> None:
    # Operator commands for a running engine, from the app or `attach` in another process
    db["commands"].create(
        {"id": str, "run_id": str, "rollout_id": str, "action": str, "text": str, "created": float, "taken": float},
        pk="id",
    )
    db["commands"].create_index(["run_id", "taken"])


@migration
def m004_grids(db: sqlite_utils.Database) -> None:
    # A grid (rlm-tui ablate) groups runs; its spec lets an interrupted grid resume
    db["grids"].create({"name": str, "created": float, "spec": str}, pk="name")
