"""A thin handle on one sqlite3 connection: statements commit on their own unless inside `atomic()`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any


class Database:
    """What the store and its callers need of a connection, and nothing that costs an import."""

    def __init__(self, target: str | Path | sqlite3.Connection) -> None:
        conn = target if isinstance(target, sqlite3.Connection) else sqlite3.connect(str(target))
        # no implicit transactions: a lone statement commits, `atomic()` and migrations say BEGIN themselves
        conn.isolation_level = None
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return (dict(zip(names, row)) for row in cursor)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]

    @property
    def journal_mode(self) -> str:
        return self.conn.execute("PRAGMA journal_mode").fetchone()[0]

    def enable_wal(self) -> None:
        if self.journal_mode != "wal":
            self.conn.execute("PRAGMA journal_mode = wal")

    @contextmanager
    def atomic(self, begin: str = "BEGIN") -> Iterator[Database]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        self.conn.execute(begin)
        try:
            yield self
        except BaseException:
            self.rollback()
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self.conn.in_transaction:  # an error may already have ended the transaction
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
