"""Output filters: each workspace's profanity policy and its own words.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspace_filters",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=8), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint("policy IN ('off', 'mask', 'block')", name=op.f("ck_workspace_filters_policy")),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_workspace_filters_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspace_filters")),
    )


def downgrade() -> None:
    op.drop_table("workspace_filters")
