"""Canary rollouts: the rollouts, their events, and what each server measured of them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_rollouts()
    _create_events()
    _create_observations()


def _create_rollouts() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_id",
            sa.Integer,
            sa.ForeignKey("models.id", ondelete="CASCADE", name="fk_rollouts_model_id"),
            nullable=False,
        ),
        sa.Column("active_model_id", sa.Integer, nullable=True),
        sa.Column("primary_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("every_s", sa.Float, nullable=False),
        sa.Column("max_error_rate", sa.Float, nullable=False),
        sa.Column("max_p99_ratio", sa.Float, nullable=False),
        sa.Column("min_requests", sa.Integer, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("applied_step", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("step_started_at", sa.Float, nullable=False),
        sa.Column("next_step_at", sa.Float, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("started_by", sa.String(160), nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("ended_by", sa.String(160), nullable=True),
        sa.UniqueConstraint("active_model_id", name="uq_rollouts_active_model_id"),
    )
    op.create_index("ix_rollouts_model_id", "rollouts", ["model_id"])


def _create_events() -> None:
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "rollout_id",
            sa.Integer,
            sa.ForeignKey("rollouts.id", ondelete="CASCADE", name="fk_rollout_events_rollout_id"),
            nullable=False,
        ),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("percent", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("by", sa.String(200), nullable=True),
    )
    op.create_index("ix_rollout_events_rollout_id", "rollout_events", ["rollout_id"])


def _create_observations() -> None:
    op.create_table(
        "rollout_observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column(
            "rollout_id",
            sa.Integer,
            sa.ForeignKey(
                "rollouts.id", ondelete="CASCADE", name="fk_rollout_observations_rollout_id"
            ),
            nullable=False,
        ),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("observed_at", sa.Float, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("buckets", sa.JSON, nullable=False),
    )
    op.create_index(
        "ix_rollout_observations_rollout_id_observed_at",
        "rollout_observations",
        ["rollout_id", "observed_at"],
    )


def downgrade() -> None:
    op.drop_table("rollout_observations")
    op.drop_table("rollout_events")
    op.drop_table("rollouts")
