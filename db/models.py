"""The tables: workspaces, channels, messages, opt-outs, output filters, model versions and training jobs.

Every timestamp is an aware UTC `datetime` in Python. SQLite has no time zones, so `UTCDateTime` stores
naive UTC there (which also keeps its text comparisons in time order) and adds the zone back on reading.
Enumerations are short strings guarded by CHECK constraints rather than native enum types, so that adding a
status is a one-line migration on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

MODEL_STATUSES = ("training", "candidate", "active", "rejected", "retired", "failed")
JOB_REASONS = ("schedule", "admin", "cli")
# What a workspace does with profanity in replies (`/filter`); slurs are blocked whatever it says.
FILTER_POLICIES = ("off", "mask", "block")
DEFAULT_FILTER_POLICY = "mask"
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# Statuses that occupy a scope's single queue slot (see the partial unique index on training_jobs).
OPEN_JOB_STATUSES = ("queued", "running")

# Batch migrations on SQLite recreate tables and must find every constraint by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def _in_list(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime on the Python side."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # A naive time is ambiguous (local? UTC?); refusing it here stops silent off-by-hours bugs.
            raise ValueError(f"Received naive datetime {value!r}, expected an aware one (tzinfo=UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids for the big table.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every chatsmith table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Workspace(Base):
    """A Discord server, a Slack workspace, or a named console workspace.

    `platform` is a name of `db.platforms.PLATFORMS`, checked when a workspace is created
    (`db.scopes.get_or_create_workspace`) rather than by a CHECK constraint, so that a new platform needs
    no migration.
    """

    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id", name="uq_workspaces_platform_external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Workspace(id={self.id}, platform={self.platform!r}, external_id={self.external_id!r})"


class Channel(Base):
    """A channel of a workspace, and whether an admin opted it in to collection."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id", name="uq_channels_workspace_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    collecting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A channel not everyone in the workspace can read. Its messages train only its own model, which
    # answers only there, unless an admin shares it with the workspace model (`workspace_training`).
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    workspace_training: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    collection_enabled_by: Mapped[str | None] = mapped_column(String(64))
    collection_enabled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"Channel(id={self.id}, workspace_id={self.workspace_id}, external_id={self.external_id!r})"


class Message(Base):
    """One chat message as collected; deleted messages keep their row (text cleared) so that a late
    re-delivery of the original event cannot bring them back."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel_id", "platform_message_id", name="uq_messages_channel_platform_message_id"),
        Index("ix_messages_channel_created", "channel_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    platform_message_id: Mapped[str] = mapped_column(String(64))
    author_id: Mapped[str] = mapped_column(String(64), index=True)
    author_is_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    edited_at: Mapped[datetime | None] = mapped_column()
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UserOptOut(Base):
    """A user who asked that nothing they write in a workspace be kept or trained on."""

    __tablename__ = "user_opt_outs"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", name="uq_user_opt_outs_workspace_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkspaceFilter(Base):
    """A workspace's output filter: its profanity policy and the words its admins added.

    A workspace without a row has the default policy and no words of its own.
    """

    __tablename__ = "workspace_filters"
    __table_args__ = (CheckConstraint(_in_list("policy", FILTER_POLICIES), name="policy"),)

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[str] = mapped_column(String(8), default=DEFAULT_FILTER_POLICY)
    words: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class ImitationConsent(Base):
    """A member who agreed that `/generate as:@member` may write like them in a workspace (`/imitate-me`).

    Deleted by `/imitate-me off`; an opt-out (and so forget-me) ends it too, since an opted-out member has
    no messages left to imitate from.
    """

    __tablename__ = "imitation_consents"
    __table_args__ = (
        UniqueConstraint("workspace_id", "user_id", name="uq_imitation_consents_workspace_user"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """One trained model of a scope: its bundle on disk, how it was made and how it scored.

    The scope is the workspace when `channel_id` is None, else the channel; `scope_key` spells it out
    ("<workspace_id>" or "<workspace_id>/<channel_id>") so that per-scope uniqueness is a plain index.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("scope_key", "version", name="uq_model_versions_scope_version"),
        CheckConstraint(_in_list("status", MODEL_STATUSES), name="status"),
        # At most one serving model per scope, whatever the code above does.
        Index(
            "uq_model_versions_one_active_per_scope",
            "scope_key",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    scope_key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="training")
    bundle_path: Mapped[str | None] = mapped_column(String(1024))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    tokenizer_kind: Mapped[str] = mapped_column(String(32))
    corpus_stats: Mapped[dict[str, Any] | None] = mapped_column()
    metrics: Mapped[dict[str, Any] | None] = mapped_column()
    parent_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column()
    # What an operator should know: why it was rejected, flagged or rolled back.
    note: Mapped[str | None] = mapped_column(Text)
    # Whose messages shaped the weights (its own corpus and every ancestor's, see `ModelVersionAuthor`) and
    # the oldest of them. A version from before this was recorded has `exposure_recorded` false and counts
    # as having seen every member of its workspace.
    exposure_recorded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    oldest_message_at: Mapped[datetime | None] = mapped_column()
    # Which channels' messages shaped the weights, inherited the same way (`ModelVersionChannel`). False:
    # not recorded, so the version counts as having learned from every channel of its workspace.
    channels_recorded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def __repr__(self) -> str:
        return f"ModelVersion(id={self.id}, scope={self.scope_key!r}, v{self.version}, {self.status})"


class ModelVersionAuthor(Base):
    """A member whose messages a model version learned from, directly or through the model it was tuned from."""

    __tablename__ = "model_version_authors"
    __table_args__ = (Index("ix_model_version_authors_author_id", "author_id"),)

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    author_id: Mapped[str] = mapped_column(String(64), primary_key=True)


class ModelVersionChannel(Base):
    """A channel whose messages a model version learned from, directly or through the model it was tuned from.

    `channel_id` is deliberately no foreign key: the record must outlive the channel's row, so that a
    version that learned from a channel since deleted can still be found and withdrawn.
    """

    __tablename__ = "model_version_channels"
    __table_args__ = (Index("ix_model_version_channels_channel_id", "channel_id"),)

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class TrainingJob(Base):
    """A request to train a scope's model; the table is the queue that trainer workers claim from."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        CheckConstraint(_in_list("status", JOB_STATUSES), name="status"),
        CheckConstraint(_in_list("reason", JOB_REASONS), name="reason"),
        Index("ix_training_jobs_status_created", "status", "created_at"),
        # One queued-or-running job per scope, enforced by the database so that two bots (or a bot and
        # the schedule) enqueueing at the same moment cannot both succeed.
        Index(
            "uq_training_jobs_one_open_per_scope",
            "scope_key",
            unique=True,
            sqlite_where=text(_in_list("status", OPEN_JOB_STATUSES)),
            postgresql_where=text(_in_list("status", OPEN_JOB_STATUSES)),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    scope_key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    # {"epoch", "epochs", "loss", "eta_seconds", "fraction"}: see db.jobs.JobProgress.
    progress: Mapped[dict[str, Any] | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker_id: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    def __repr__(self) -> str:
        return f"TrainingJob(id={self.id}, scope={self.scope_key!r}, {self.status})"
