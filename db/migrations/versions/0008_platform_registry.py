"""Platform names are checked by the code's registry (`db.platforms`), not by a CHECK constraint, so that a
new platform needs no migration.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite copies the table to drop a constraint; `db.schema` runs migrations with its foreign keys off so
    # that dropping the old copy does not cascade to the channels.
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint(op.f("ck_workspaces_platform"), type_="check")


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.create_check_constraint(
            op.f("ck_workspaces_platform"), sa.text("platform IN ('discord', 'slack', 'console')")
        )
