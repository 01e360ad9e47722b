"""Durable reminders in SQL (SQLAlchemy 1.4 Core, dialect-neutral: SQLite or PostgreSQL).

States: pending -> claimed (a lease) -> delivered | missed; pending/claimed -> cancelled.
Every state change is a conditional UPDATE whose rowcount says whether this caller won, so
work that must happen once is claimed in the store, never in one process's memory. On
PostgreSQL, ``claim_due`` takes a batch in one transaction (``FOR UPDATE SKIP LOCKED``), so
several action servers polling together never wait on, or take, each other's rows; a claim is a
lease, and a lapsed lease (its claimer died) is claimed again by whoever polls next.
Times are stored as naive UTC datetimes.

Settings (environment): ``REMINDER_DB_URL`` (SQLAlchemy URL), and for server databases
``REMINDER_DB_POOL_SIZE`` (default 5), ``REMINDER_DB_MAX_OVERFLOW`` (5),
``REMINDER_DB_CONNECT_TIMEOUT_S`` (5).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///var/reminders.db"
URL_SETTING = "REMINDER_DB_URL"
PENDING, CLAIMED, DELIVERED, MISSED, CANCELLED = (
    "pending",
    "claimed",
    "delivered",
    "missed",
    "cancelled",
)
OPEN_STATES = (PENDING, CLAIMED)

metadata = sa.MetaData()
reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False, index=True),
    sa.Column("caller_number", sa.String(32), nullable=True, index=True),
    sa.Column("channel", sa.String(64), nullable=True),
    sa.Column("text", sa.String(500), nullable=False),
    sa.Column("due_at", sa.DateTime(), nullable=False, index=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("lease_until", sa.DateTime(), nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("delivered_at", sa.DateTime(), nullable=True),
)


class ReminderStoreError(RuntimeError):
    """The store cannot be read or written (bad URL, unwritable file, database down)."""


def safe_url(url: str) -> str:
    """The URL with any password masked, for logs and error messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show its scheme only
        return url.split("://", 1)[0] + "://..." if "://" in url else "<unparsable URL>"


@dataclass(frozen=True)
class Reminder:
    """One reminder as stored."""

    id: str
    sender_id: str
    text: str
    due_at: datetime  # aware, UTC
    timezone: str
    state: str
    caller_number: str | None = None
    channel: str | None = None
    attempts: int = 0
    created_at: datetime | None = None

    @classmethod
    def from_row(cls, row: sa.engine.Row) -> Reminder:
        return cls(
            id=row.id,
            sender_id=row.sender_id,
            text=row.text,
            due_at=_aware(row.due_at),
            timezone=row.timezone,
            state=row.state,
            caller_number=row.caller_number,
            channel=row.channel,
            attempts=row.attempts or 0,
            created_at=_aware(row.created_at) if row.created_at else None,
        )


def _naive_utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def _aware(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


class ReminderStore:
    """Reminders table behind one SQLAlchemy engine; every method is short and blocking.

    Call from async code through ``asyncio.to_thread``. ``url`` is the store's address with any
    password masked, safe to log; the connection uses the URL as given.
    """

    def __init__(self, url: str) -> None:
        if url.startswith("postgres://"):  # the Heroku-style alias SQLAlchemy 1.4 rejects
            url = "postgresql://" + url[len("postgres://") :]
        self._connect_url = url
        self.url = safe_url(url)
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def _connect(self) -> Engine:
        with self._lock:
            if self._engine is not None:
                return self._engine
            try:
                engine = _create_engine(self._connect_url)
                try:
                    metadata.create_all(engine, checkfirst=True)
                except SQLAlchemyError:
                    # Another process may have created the table at the same moment.
                    time.sleep(0.2)
                    metadata.create_all(engine, checkfirst=True)
            except (SQLAlchemyError, OSError, ValueError) as exc:
                raise ReminderStoreError(
                    f"cannot open the reminder store at {URL_SETTING}={self.url}: "
                    f"{_first_line(exc)}"
                ) from exc
            self._engine = engine
            return engine

    def _run(self, work):  # type: ignore[no-untyped-def]
        engine = self._connect()
        try:
            with engine.begin() as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            raise ReminderStoreError(
                f"reminder store error ({URL_SETTING}={self.url}): {_first_line(exc)}"
            ) from exc

    @property
    def is_postgresql(self) -> bool:
        """True when the store is a PostgreSQL database."""
        return self._connect_url.startswith("postgresql")

    def check(self) -> None:
        """Open the store (creating the table) or raise ReminderStoreError."""
        self._run(lambda conn: conn.execute(sa.select(sa.func.count()).select_from(reminders)))

    def add(
        self,
        sender_id: str,
        text: str,
        due_at: datetime,
        tz: str,
        now: datetime,
        caller_number: str | None = None,
        channel: str | None = None,
    ) -> Reminder:
        """Save a new pending reminder."""
        row = {
            "id": uuid.uuid4().hex,
            "sender_id": sender_id,
            "caller_number": caller_number,
            "channel": channel,
            "text": text[:500],
            "due_at": _naive_utc(due_at),
            "timezone": tz,
            "state": PENDING,
            "attempts": 0,
            "created_at": _naive_utc(now),
        }
        self._run(lambda conn: conn.execute(reminders.insert().values(**row)))
        return self.get(row["id"])  # type: ignore[return-value]

    def get(self, reminder_id: str) -> Reminder | None:
        """One reminder by id."""
        row = self._run(
            lambda conn: conn.execute(
                sa.select(reminders).where(reminders.c.id == str(reminder_id))
            ).first()
        )
        return Reminder.from_row(row) if row else None

    def list_open(self, sender_id: str, caller_number: str | None = None) -> list[Reminder]:
        """The user's pending reminders, soonest first."""
        who = reminders.c.sender_id == sender_id
        if caller_number:
            who = sa.or_(who, reminders.c.caller_number == caller_number)
        rows = self._run(
            lambda conn: conn.execute(
                sa.select(reminders)
                .where(who, reminders.c.state.in_(OPEN_STATES))
                .order_by(reminders.c.due_at)
            ).fetchall()
        )
        return [Reminder.from_row(r) for r in rows]

    def cancel(self, ids: list[str], sender_id: str, caller_number: str | None = None) -> int:
        """Cancel open reminders of this user; returns how many were cancelled."""
        if not ids:
            return 0
        who = reminders.c.sender_id == sender_id
        if caller_number:
            who = sa.or_(who, reminders.c.caller_number == caller_number)
        result = self._run(
            lambda conn: conn.execute(
                reminders.update()
                .where(
                    reminders.c.id.in_([str(i) for i in ids]),
                    who,
                    reminders.c.state.in_(OPEN_STATES),
                )
                .values(state=CANCELLED, lease_until=None)
            )
        )
        return int(result.rowcount or 0)

    def due(self, now: datetime, limit: int = 50) -> list[Reminder]:
        """Reminders ready to deliver: due and pending (past any backoff) or with a lapsed lease."""
        t = _naive_utc(now)
        rows = self._run(
            lambda conn: conn.execute(
                sa.select(reminders).where(_ready(t)).order_by(reminders.c.due_at).limit(limit)
            ).fetchall()
        )
        return [Reminder.from_row(r) for r in rows]

    def claim(self, reminder_id: str, now: datetime, lease_seconds: float = 60.0) -> bool:
        """Atomically claim a due reminder for delivery; True only for the one winner."""
        t = _naive_utc(now)
        result = self._run(
            lambda conn: conn.execute(
                reminders.update()
                .where(
                    reminders.c.id == reminder_id,
                    sa.or_(
                        reminders.c.state == PENDING,
                        sa.and_(reminders.c.state == CLAIMED, reminders.c.lease_until < t),
                    ),
                )
                .values(state=CLAIMED, lease_until=t + timedelta(seconds=lease_seconds))
            )
        )
        return result.rowcount == 1

    def claim_due(
        self, now: datetime, limit: int = 10, lease_seconds: float = 60.0
    ) -> list[Reminder]:
        """Claim up to ``limit`` ready reminders at once; each is claimed by one caller only.

        PostgreSQL: one transaction, ``SELECT ... LIMIT n FOR UPDATE SKIP LOCKED`` then
        ``UPDATE ... RETURNING`` of those rows. Elsewhere: the ready rows, each taken by a
        conditional UPDATE.
        """
        t = _naive_utc(now)
        lease = t + timedelta(seconds=lease_seconds)
        if not self.is_postgresql:
            taken: list[Reminder] = []
            for r in self.due(now, max(4 * limit, 50)):
                if len(taken) >= limit:
                    break
                if self.claim(r.id, now, lease_seconds):
                    taken.append(replace(r, state=CLAIMED))
            return taken

        def work(conn: sa.engine.Connection) -> list[sa.engine.Row]:
            # Lock up to `limit` ready rows that no other transaction holds, then claim exactly
            # those. (One UPDATE ... WHERE id IN (SELECT ... LIMIT n) may claim more than n:
            # PostgreSQL can re-run such a subquery.) The locks last until this commit.
            ids = (
                conn.execute(
                    sa.select(reminders.c.id)
                    .where(_ready(t))
                    .order_by(reminders.c.due_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            return conn.execute(
                reminders.update()
                .where(reminders.c.id.in_(ids))
                .values(state=CLAIMED, lease_until=lease)
                .returning(*reminders.c)
            ).fetchall()

        rows = self._run(work)
        return sorted((Reminder.from_row(r) for r in rows), key=lambda r: r.due_at)

    def release(self, reminder_id: str, retry_at: datetime) -> bool:
        """Give a claim back after a failed delivery, to retry at ``retry_at``."""
        result = self._run(
            lambda conn: conn.execute(
                reminders.update()
                .where(reminders.c.id == reminder_id, reminders.c.state == CLAIMED)
                .values(
                    state=PENDING,
                    lease_until=None,
                    attempts=reminders.c.attempts + 1,
                    next_attempt_at=_naive_utc(retry_at),
                )
            )
        )
        return result.rowcount == 1

    def _finish(self, reminder_id: str, state: str, now: datetime) -> bool:
        result = self._run(
            lambda conn: conn.execute(
                reminders.update()
                .where(reminders.c.id == str(reminder_id), reminders.c.state.in_(OPEN_STATES))
                .values(state=state, lease_until=None, delivered_at=_naive_utc(now))
            )
        )
        return result.rowcount == 1

    def mark_delivered(self, reminder_id: str, now: datetime) -> bool:
        """Mark delivered exactly once: True only for the call that made the change."""
        return self._finish(reminder_id, DELIVERED, now)

    def mark_missed(self, reminder_id: str, now: datetime) -> bool:
        """Mark missed (the user was away): action_greet tells it later."""
        return self._finish(reminder_id, MISSED, now)

    def take_missed(
        self, sender_id: str, now: datetime, caller_number: str | None = None
    ) -> list[Reminder]:
        """Missed reminders of this user, each marked delivered by this call (once)."""
        who = reminders.c.sender_id == sender_id
        if caller_number:
            who = sa.or_(who, reminders.c.caller_number == caller_number)

        def work(conn: sa.engine.Connection) -> list[Reminder]:
            rows = conn.execute(
                sa.select(reminders)
                .where(who, reminders.c.state == MISSED)
                .order_by(reminders.c.due_at)
            ).fetchall()
            taken = []
            for row in rows:
                result = conn.execute(
                    reminders.update()
                    .where(reminders.c.id == row.id, reminders.c.state == MISSED)
                    .values(state=DELIVERED, delivered_at=_naive_utc(now))
                )
                if result.rowcount == 1:
                    taken.append(Reminder.from_row(row))
            return taken

        return self._run(work)


def _ready(t: datetime) -> sa.sql.ColumnElement:
    """Due and pending (past any backoff), or claimed with a lapsed lease."""
    return sa.or_(
        sa.and_(
            reminders.c.state == PENDING,
            reminders.c.due_at <= t,
            sa.or_(reminders.c.next_attempt_at.is_(None), reminders.c.next_attempt_at <= t),
        ),
        sa.and_(reminders.c.state == CLAIMED, reminders.c.lease_until < t),
    )


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


def _create_engine(url: str) -> Engine:
    kwargs: dict = {"future": True}
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Wait for a competing writer instead of failing at once.
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        # A small pool per process: the dispatcher and a few action threads share it, and many
        # action servers share one database (PostgreSQL's default max_connections is 100).
        kwargs.update(
            pool_pre_ping=True,
            pool_size=int(_env_number("REMINDER_DB_POOL_SIZE", 5)),
            max_overflow=int(_env_number("REMINDER_DB_MAX_OVERFLOW", 5)),
            pool_timeout=10,
            pool_recycle=1800,
        )
        if url.startswith(("postgresql", "postgres")):
            timeout = int(_env_number("REMINDER_DB_CONNECT_TIMEOUT_S", 5))
            kwargs["connect_args"] = {"connect_timeout": max(1, timeout)}
    return sa.create_engine(url, **kwargs)


_stores: dict[str, ReminderStore] = {}
_stores_lock = threading.Lock()


def store_url() -> str:
    """The reminder store URL from env REMINDER_DB_URL."""
    return os.environ.get(URL_SETTING) or DEFAULT_URL


def get_store(url: str | None = None) -> ReminderStore:
    """The process-wide store for a URL (default: env REMINDER_DB_URL)."""
    url = url or store_url()
    with _stores_lock:
        if url not in _stores:
            _stores[url] = ReminderStore(url)
        return _stores[url]
