"""Opening the store: one engine per daemon, schema brought up to date by Alembic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_PROJECT = "default"
SQLITE_POOL = 48  # connections kept open (SQLite: one file, cheap handles)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 (DB-API connection)
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; the agent and the api share one file.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # Keep a connection for every thread that may hold a session at once (the api's
        # 40 worker threads, the agent's): past pool_size, QueuePool closes each returned
        # connection and the next session opens a new one (file open, pragmas, cold cache).
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10},
                               pool_size=SQLITE_POOL, max_overflow=SQLITE_POOL)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # SQLite alters a table by copying it; foreign keys must be off meanwhile, and
            # that pragma only takes effect outside a transaction (so on the raw driver).
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        with conn.begin():
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        if sqlite:
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


class Store:
    """The daemon's handle on the store: sessions and the built-in default project."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._ensure_default_project()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on error."""
        with self._sessions() as s, s.begin():
            yield s

    def _ensure_default_project(self) -> None:
        from berth.store.models import Project

        with self.session() as s:
            if s.get(Project, DEFAULT_PROJECT) is None:
                s.add(Project(id=DEFAULT_PROJECT, name=DEFAULT_PROJECT, created_at=time.time(),
                              userns_slot=0, grants=[], quota_serial=0))

    def close(self) -> None:
        self.engine.dispose()
