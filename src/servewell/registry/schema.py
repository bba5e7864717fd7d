"""The registry's tables (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("format", String(32), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("signature", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("params", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("parent_id", Integer, ForeignKey("model_versions.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "version_id",
        Integer,
        ForeignKey("model_versions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(64), nullable=False),
    Column("format", String(32), nullable=False),
    Column("uri", Text, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    Column("size_bytes", BigInteger, nullable=False),
    UniqueConstraint("version_id", "role", name="uq_artifacts_version_id_role"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("models", JSON, nullable=True),
    Column("rate", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

alias_history = Table(
    "alias_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("revision", BigInteger, nullable=False, unique=True),
    Column("moved_at", DateTime(timezone=True), nullable=False),
    Column("moved_by", String(160), nullable=True),
    Index("ix_alias_history_model_id_alias", "model_id", "alias"),
)

traffic_policies = Table(
    "traffic_policies",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("arms", JSON, nullable=False),
    Column("sticky_header", String(64), nullable=False),
    Column("shadow_target", String(64), nullable=True),
    Column("shadow_percent", Float, nullable=True),
    Column("experiment_id", String(64), nullable=False),
    Column("revision", BigInteger, nullable=False, unique=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(160), nullable=True),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("logged_at", Float, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("arm", String(64), nullable=True),
    Column("key_name", String(128), nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("outputs", Text, nullable=True),
    Column("inputs", Text, nullable=True),
    Index("ix_predictions_model_logged_at", "model", "logged_at"),
    Index("ix_predictions_model_request_id", "model", "request_id"),
)
"""The prediction log (``registry/predictions.py``): one row per logged prediction;
``logged_at`` is seconds since the epoch (a float: the cheapest to write, index and
compare, on both backends); ``outputs`` and ``inputs`` are JSON text. By model name,
not id: rows are written in batches without lookups, and outlive nothing they point at.
Two indexes only (each one costs every insert): by model and time (exports, windows,
pruning), by model and request id (labels)."""

feedback = Table(
    "feedback",
    metadata,
    Column("model", String(128), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("label", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_feedback_received_at", "received_at"),
)
"""Ground truth for logged predictions, one label (JSON text) per model and request id."""

leases = Table(
    "leases",
    metadata,
    Column("name", String(160), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
)
"""Named leases (``registry/leases.py``): who runs a job that must run once, until when
(seconds since the epoch)."""

prediction_sketches = Table(
    "prediction_sketches",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("writer", String(64), nullable=False, unique=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("arm", String(64), nullable=True),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("logged", Integer, nullable=False),
    Column("sketch", LargeBinary, nullable=False),
    Index("ix_prediction_sketches_model_ends_at", "model", "ends_at"),
)
"""Window sketches of the prediction log (``registry/sketches.py``): a packed
``stats/bucket.Bucket`` per model, version, arm and time bucket ``[starts_at, ends_at)``
(seconds since the epoch), one row per writer (a server process's open bucket, or a
compaction), so replicas never write the same row and a window merges them all."""
