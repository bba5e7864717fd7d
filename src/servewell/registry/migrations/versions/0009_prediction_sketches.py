"""Window sketches of the prediction log: one packed bucket per model, version, arm,
time bucket and writer (``registry/sketches.py``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_sketches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("writer", sa.String(64), nullable=False, unique=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("arm", sa.String(64), nullable=True),
        sa.Column("starts_at", sa.Float, nullable=False),  # seconds since the epoch
        sa.Column("ends_at", sa.Float, nullable=False),
        sa.Column("logged", sa.Integer, nullable=False),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_prediction_sketches_model_ends_at", "prediction_sketches", ["model", "ends_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        # Packed sketches are mostly floats: TOAST's compression costs every save and
        # read of a megabyte row and saves little, so store them out of line as they are.
        op.execute("ALTER TABLE prediction_sketches ALTER COLUMN sketch SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("prediction_sketches")
