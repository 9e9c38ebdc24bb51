"""The Alembic migrations produce exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from berth.store.db import DEFAULT_PROJECT, Store
from berth.store.models import Base, Project


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'berth.db'}")
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        store.close()


def test_opening_twice_is_idempotent_and_creates_the_default_project(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'berth.db'}"
    Store(url).close()
    store = Store(url)
    try:
        assert "containers" in inspect(store.engine).get_table_names()
        with store.session() as s:
            assert s.get(Project, DEFAULT_PROJECT) is not None
    finally:
        store.close()


def test_upgrading_a_store_with_rows_in_it(tmp_path: Path) -> None:
    """Rows written by the first schema survive every later migration."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from berth.store.db import MIGRATIONS, make_engine, migrate

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO projects VALUES ('default', 'default', 1.0)"))
        conn.execute(text("INSERT INTO images VALUES ('default', 'sha256:a', 'sha256:m', "
                          "'{}', '[]', 1, 1.0)"))
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT userns_slot, grants FROM projects")).one() == (0, "[]")
        assert conn.execute(text("SELECT repo_digests, signatures FROM images")).one() == \
            ("[]", "[]")
        # an image from before build cache was told apart stays listed
        assert conn.execute(text("SELECT intermediate FROM images")).scalar_one() == 0
    engine.dispose()
