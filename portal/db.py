"""The declarative base (with a constraint naming convention), a UTC DateTime type, and the
SQLite connection settings (docs/security.md DB-01, DB-02)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import cast

from sqlalchemy import DateTime
from sqlalchemy import MetaData
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.engine import Engine
from sqlalchemy.engine import Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import SessionTransaction
from sqlalchemy.orm import scoped_session
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000

#: Set while a write transaction is being begun: its BEGIN is IMMEDIATE on SQLite.
_writing: ContextVar[bool] = ContextVar("portal_db_writing", default=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike.

    Naive values are refused: a naive time is a bug waiting for a clock change.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# A plain Session or Flask-SQLAlchemy's request-scoped ``db.session``, which proxies one.
AnySession = Session | scoped_session[Any]


@contextmanager
def write_transaction(session: AnySession) -> Iterator[None]:
    """Run the block in its own transaction, committed at the end (rolled back on error).

    On SQLite the transaction begins IMMEDIATE, taking the write lock before its first read, so
    a read-then-write (the login counter, a flag change) waits its turn under busy_timeout
    instead of failing with SQLITE_BUSY (docs/security.md DB-02).  Any read transaction the session
    had open is ended first: it holds nothing to lose.  On PostgreSQL this is a plain transaction
    (services lock rows with ``with_for_update`` where they read-then-write).
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("write_transaction: make changes inside the block, not before it")
    token = _writing.set(True)  # a BEGIN emitted in the block is IMMEDIATE (SQLite)
    try:
        if _made_immediate(session):
            try:
                yield
                session.commit()  # a failure here (the last flush, COMMIT) is rolled back too
            except BaseException:
                session.rollback()
                raise
            return
        session.commit()
        with session.begin():  # the BEGIN is emitted lazily, at the block's first statement
            yield
    finally:
        _writing.reset(token)


def _made_immediate(session: AnySession) -> bool:
    """SQLite: end the read transaction the session holds (the request's user was read in it)
    and begin the write transaction on the same connection, ``COMMIT`` then ``BEGIN
    IMMEDIATE``, rather than ending the session's transaction, handing the connection back to
    the pool and checking it out again (~5 % of a one-row write such as the Console's
    toggle).  A transaction whose connection begins now begins IMMEDIATE and is kept as it is.
    False (nothing done) on PostgreSQL, without a transaction, inside a SAVEPOINT, or when the
    transaction has flushed changes (rows the session would still count as undone if the block
    failed, while ``COMMIT`` had stored them: the full path commits them first, as before)."""
    plain = session() if isinstance(session, scoped_session) else session
    if not plain.in_transaction() or plain.in_nested_transaction() or plain.info.get(_FLUSHED):
        return False
    if plain.get_bind().dialect.name != "sqlite":
        return False
    connection = plain.connection()
    if connection.info.get(_IMMEDIATE):
        return True
    try:
        if _driver(connection).in_transaction:
            _driver_execute(connection, "COMMIT")
        _begin(connection, immediate=True)
    except BaseException:
        plain.rollback()  # ends SQLite's transaction if COMMIT failed, and the session's
        raise
    return True


def _begin(connection: Connection, *, immediate: bool) -> None:
    """SQLite's ``BEGIN`` (``BEGIN IMMEDIATE`` for a write), noted on the connection."""
    connection.info[_IMMEDIATE] = immediate
    _driver_execute(connection, "BEGIN IMMEDIATE" if immediate else "BEGIN")


#: ``Session.info``: the session's transaction has flushed changes (see :func:`_made_immediate`).
_FLUSHED = "portal_db_flushed"
#: ``Connection.info``: the connection's current transaction began ``BEGIN IMMEDIATE``.
_IMMEDIATE = "portal_db_immediate"


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _context: Any) -> None:
    session.info[_FLUSHED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_flush(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_FLUSHED, None)


def _driver(connection: Connection) -> Any:
    """The driver's own connection (``sqlite3.Connection``) under a checked-out connection."""
    driver = connection.connection.driver_connection
    assert driver is not None  # checked out: never detached
    return driver


def _driver_execute(connection: Connection, statement: str) -> None:
    """Run a transaction statement on the driver's connection: through SQLAlchemy's execution
    (``exec_driver_sql``) a ``BEGIN`` cost ~25 µs of Python, five times SQLite's own work, on
    every request.  Statement listeners (``before_cursor_execute``) do not see it.  An error is
    wrapped as SQLAlchemy would ("database is locked" past busy_timeout stays an
    OperationalError, which :func:`is_outage` makes a 503; a connection SQLAlchemy would call a
    disconnect is marked so)."""
    dialect = connection.dialect
    try:
        _driver(connection).execute(statement)
    except dialect.loaded_dbapi.Error as error:
        raise DBAPIError.instance(
            statement,
            (),
            error,
            dialect.loaded_dbapi.Error,
            dialect=dialect,
            connection_invalidated=dialect.is_disconnect(error, connection.connection, None),
        ) from error


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched.

    ``Session.execute`` is typed to return a plain ``Result``; for these statements it is a
    ``CursorResult``, which has the count.
    """
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def configure_sqlite(engine: Engine) -> None:
    """WAL, busy_timeout, foreign keys, synchronous=NORMAL; write transactions BEGIN IMMEDIATE.

    pysqlite's own transaction handling is switched off (``isolation_level = None``) so that
    SQLAlchemy's ``begin`` event issues the BEGIN itself: ``BEGIN IMMEDIATE`` inside
    :func:`write_transaction`, a plain (deferred) ``BEGIN`` for reads, which in WAL mode never
    block writers and are never blocked by them.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        _begin(connection, immediate=_writing.get())


#: SQLite's words for a moment when the database cannot be used (another process holds the
#: lock past busy_timeout, the file or its folder cannot be opened or written), as opposed to a
#: mistake in a statement ("no such table"), which stays a bug.
_SQLITE_OUTAGE_WORDS = ("locked", "busy", "readonly", "unable to open", "disk i/o", "disk is full")


def is_outage(error: BaseException) -> bool:
    """Is ``error`` the database being unreachable or unusable for a moment (a 503, not a bug)?

    PostgreSQL: the driver's OperationalError / InterfaceError (server gone, connection killed
    by ``pg_terminate_backend``, refused, timed out) or any error SQLAlchemy recognised as a
    disconnect.  SQLite: an OperationalError naming a lock, a read-only or unopenable file.
    Either: no connection free in the pool within its timeout.  SQLAlchemy has already
    invalidated a dead connection when this is raised, and the pool's pre-ping replaces the
    others at their next checkout: nothing needs a restart.
    """
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError | InterfaceError):  # the driver's class, wrapped
        return False
    if type(error.orig).__module__.startswith("sqlite3"):
        text = str(error.orig).lower()
        return any(word in text for word in _SQLITE_OUTAGE_WORDS)
    return True


def outage_summary(error: BaseException) -> str:
    """One short line for the log: the driver's error class and the first line of its message
    (never the statement or its parameters)."""
    orig = getattr(error, "orig", None) or error
    first = (str(orig).strip().splitlines() or [""])[0]
    return f"{type(orig).__name__}: {first[:200]}"


#: Search structures made by hand in migrations, not declared by the models: 0009_user_search
#: (an FTS5 table on SQLite, pg_trgm indexes on PostgreSQL) and 0007_helpdesk_queue (the same
#: for the queue's error text, and prefix indexes).  Names, and prefixes of FTS5's shadow tables.
HAND_MADE = (
    "users_search",
    "ix_users_user_id_key_trgm",
    "ix_users_full_name_key_trgm",
    "ix_users_email_key_trgm",
    "helpdesk_requests_fts",
    "ix_helpdesk_requests_error_message_trgm",
    "ix_helpdesk_requests_email_key_pattern",
    "ix_helpdesk_requests_user_id_key_pattern",
    "ix_helpdesk_requests_name_key_pattern",  # 0017_hdqueue (PostgreSQL only)
    "ix_users_org_last_login_desc",  # 0010_user_sort_desc (PostgreSQL only)
    "ix_users_org_expires_on_desc",
)


def include_name(name: str | None, _type: str, _parent: Any) -> bool:
    """Alembic autogenerate filter: leave the hand-made search structures alone."""
    return name is None or not name.startswith(HAND_MADE)
