"""Database migrations, run programmatically (`make run`, the production `migrate` job).

`python -m core.migrate` upgrades the database the settings point at to the newest revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.db import sync_url

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _alembic_ini() -> Path:
    # The source tree normally; the working directory when `core` was installed elsewhere.
    for root in (_PROJECT_ROOT, Path.cwd()):
        if (root / "alembic.ini").exists() and (root / "migrations" / "env.py").exists():
            return root / "alembic.ini"
    raise FileNotFoundError("alembic.ini and migrations/ not found next to core/ or in the cwd")


def alembic_config(url: str) -> Config:
    """An Alembic config for `url` that leaves the caller's logging configuration alone."""
    config = Config(str(_alembic_ini()))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def ensure_sqlite_parent(url: str) -> None:
    """SQLite creates the database file but not its directory."""
    parsed = make_url(sync_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """What autogenerate compares: not the search objects the revisions make by hand and
    `schemas.tables` makes by DDL (SQLite's FTS5 table and its shadow tables, PostgreSQL's
    trigram index), which SQLAlchemy's metadata cannot declare."""
    if type_ == "table" and name and name.startswith("cases_search"):
        return False
    return not (type_ == "index" and name == "ix_cases_words")


def upgrade_database(url: str) -> None:
    """Run `alembic upgrade head` on the database at `url` (blocking; idempotent). On SQLite,
    then rebuild the case list's search table (its rows are found by the case rows' rowids,
    which a VACUUM may renumber: `schemas.tables.CASE_SEARCH_REBUILD`) and ANALYZE: SQLite
    keeps no statistics on its own, and without them its planner reads `GET /cases?escalated=`
    from the sort's index instead of the small partial one (190 ms against 15 at 100,000
    cases, `bench.listing`). PostgreSQL's autovacuum analyzes by itself."""
    ensure_sqlite_parent(url)
    command.upgrade(alembic_config(url), "head")
    if make_url(url).get_backend_name() == "sqlite":
        from schemas.tables import CASE_SEARCH_REBUILD

        engine = create_engine(sync_url(url))
        try:
            with engine.begin() as conn:
                for statement in (*CASE_SEARCH_REBUILD, "ANALYZE"):
                    conn.execute(text(statement))
        finally:
            engine.dispose()


def main() -> None:
    from core.settings import Settings

    upgrade_database(Settings().resolved_database_url)


if __name__ == "__main__":
    main()
