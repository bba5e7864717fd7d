"""Alert rules: each rule's state, and every event.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("rule", sa.String(160), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", sa.Float, nullable=True),
        sa.Column("last_bad", sa.Float, nullable=True),
        sa.Column("evaluated_at", sa.Float, nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("rule", sa.String(160), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("metric", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("op", sa.String(2), nullable=False),
        sa.Column("severity", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_alert_events_model_at", "alert_events", ["model", "at"])


def downgrade() -> None:
    op.drop_index("ix_alert_events_model_at", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_states")
