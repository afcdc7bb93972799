"""Channel lineage: which channels' messages each model version learned from.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Versions made before this have no record: they count as having learned from every channel.
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(
            sa.Column("channels_recorded", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "model_version_channels",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_version_channels_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "channel_id", name=op.f("pk_model_version_channels")),
    )
    op.create_index("ix_model_version_channels_channel_id", "model_version_channels", ["channel_id"])


def downgrade() -> None:
    op.drop_index("ix_model_version_channels_channel_id", table_name="model_version_channels")
    op.drop_table("model_version_channels")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("channels_recorded")
