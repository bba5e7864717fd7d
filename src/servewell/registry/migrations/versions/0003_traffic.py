"""Traffic: every alias move in a history, one traffic policy per model.

The aliases that exist already enter the history as set (from nothing) by the
migration, so the history always ends where each alias points.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    history = op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "model_id",
            sa.Integer,
            sa.ForeignKey("models.id", ondelete="CASCADE", name="fk_alias_history_model_id"),
            nullable=False,
        ),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_by", sa.String(160), nullable=True),
        sa.UniqueConstraint("revision", name="uq_alias_history_revision"),
    )
    op.create_index("ix_alias_history_model_id_alias", "alias_history", ["model_id", "alias"])
    op.create_table(
        "traffic_policies",
        sa.Column(
            "model_id",
            sa.Integer,
            sa.ForeignKey("models.id", ondelete="CASCADE", name="fk_traffic_policies_model_id"),
            primary_key=True,
        ),
        sa.Column("arms", sa.JSON, nullable=False),
        sa.Column("sticky_header", sa.String(64), nullable=False),
        sa.Column("shadow_target", sa.String(64), nullable=True),
        sa.Column("shadow_percent", sa.Float, nullable=True),
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(160), nullable=True),
        sa.UniqueConstraint("revision", name="uq_traffic_policies_revision"),
    )
    _record_existing_aliases(history)


def _record_existing_aliases(history: sa.Table) -> None:
    aliases = sa.table("aliases", sa.column("model_id"), sa.column("name"), sa.column("version_id"))
    versions = sa.table("model_versions", sa.column("id"), sa.column("version"))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(aliases.c.model_id, aliases.c.name, versions.c.version)
        .join(versions, versions.c.id == aliases.c.version_id)
        .order_by(aliases.c.model_id, aliases.c.name)
    ).all()
    now = datetime.now(UTC)
    if rows:
        op.bulk_insert(
            history,
            [
                {
                    "model_id": row.model_id,
                    "alias": row.name,
                    "from_version": None,
                    "to_version": row.version,
                    "revision": number,
                    "moved_at": now,
                    "moved_by": "migration",
                }
                for number, row in enumerate(rows, start=1)
            ],
        )


def downgrade() -> None:
    op.drop_table("traffic_policies")
    op.drop_index("ix_alias_history_model_id_alias", "alias_history")
    op.drop_table("alias_history")
