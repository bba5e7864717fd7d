"""The memory a version took when it was first loaded (``serving/budget.py``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("memory_bytes", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it copies the table, which its foreign keys forbid.
    # Both databases drop a column in place (SQLite since 3.35).
    op.execute("ALTER TABLE model_versions DROP COLUMN memory_bytes")
