"""LLM spend per key, model and day; each key's spending budget and token rate.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("budget", sa.String(64), nullable=True))
        batch.add_column(sa.Column("tpm", sa.Integer, nullable=True))
    op.create_table(
        "llm_spend",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.UniqueConstraint("key", "model", "day", name="uq_llm_spend_key_model_day"),
    )
    op.create_index("ix_llm_spend_day", "llm_spend", ["day"])


def downgrade() -> None:
    op.drop_index("ix_llm_spend_day", table_name="llm_spend")
    op.drop_table("llm_spend")
    op.execute("ALTER TABLE api_keys DROP COLUMN tpm")
    op.execute("ALTER TABLE api_keys DROP COLUMN budget")
