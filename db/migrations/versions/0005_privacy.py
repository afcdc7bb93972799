"""Privacy: whose messages each model version learned from, which channels are private, and no pickled
schedules in the database.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(
            sa.Column("workspace_training", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(
            sa.Column("exposure_recorded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("oldest_message_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "model_version_authors",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_authors_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "author_id", name=op.f("pk_model_version_authors")),
    )
    op.create_index("ix_model_version_authors_author_id", "model_version_authors", ["author_id"])
    # The trainer no longer keeps APScheduler's pickled jobs here (it rebuilds schedules from the scopes):
    # rows someone could write would otherwise be unpickled, that is run, by an older trainer.
    op.execute("DROP TABLE IF EXISTS trainer_schedules")


def downgrade() -> None:
    op.drop_index("ix_model_version_authors_author_id", table_name="model_version_authors")
    op.drop_table("model_version_authors")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("oldest_message_at")
        batch.drop_column("exposure_recorded")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("workspace_training")
        batch.drop_column("private")
