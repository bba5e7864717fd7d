"""Load tests: what ``servewell loadtest`` ran against a model version, and its verdict.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_tests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("slo", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("by", sa.String(200), nullable=True),
    )
    op.create_index(
        "ix_load_tests_model_version_started_at",
        "load_tests",
        ["model", "version", "started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_load_tests_model_version_started_at", table_name="load_tests")
    op.drop_table("load_tests")
