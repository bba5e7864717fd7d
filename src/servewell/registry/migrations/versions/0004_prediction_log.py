"""The prediction log and the ground-truth labels joined to it by request id.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("logged_at", sa.Float, nullable=False),  # seconds since the epoch
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("key_name", sa.String(128), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("outputs", sa.Text, nullable=True),
        sa.Column("inputs", sa.Text, nullable=True),
    )
    op.create_index("ix_predictions_model_logged_at", "predictions", ["model", "logged_at"])
    op.create_index("ix_predictions_model_request_id", "predictions", ["model", "request_id"])
    op.create_table(
        "feedback",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
