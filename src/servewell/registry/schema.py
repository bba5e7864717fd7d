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
    Column("memory_bytes", BigInteger, nullable=True),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),
)
"""``memory_bytes``: what the version took when a server first loaded it (None until
then; ``serving/budget.py`` estimates it from the artifact's size before)."""

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
    Column("budget", String(64), nullable=True),
    Column("tpm", Integer, nullable=True),
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

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("active_model_id", Integer, nullable=True, unique=True),
    Column("primary_version", Integer, nullable=False),
    Column("candidate_version", Integer, nullable=False),
    Column("steps", JSON, nullable=False),
    Column("every_s", Float, nullable=False),
    Column("max_error_rate", Float, nullable=False),
    Column("max_p99_ratio", Float, nullable=False),
    Column("min_requests", Integer, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("applied_step", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("step_started_at", Float, nullable=False),
    Column("next_step_at", Float, nullable=False),
    Column("note", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("started_at", Float, nullable=False),
    Column("started_by", String(160), nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("ended_by", String(160), nullable=True),
    Index("ix_rollouts_model_id", "model_id"),
)
"""Canary rollouts (``registry/rollouts.py``), times in seconds since the epoch.
``active_model_id`` is the model's id while the rollout is running or not settled and
NULL after: its unique constraint lets one rollout per model be active, race or not
(both backends allow many NULLs)."""

rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rollout_id", Integer, ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("percent", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("by", String(200), nullable=True),
    Index("ix_rollout_events_rollout_id", "rollout_id"),
)
"""What happened to each rollout: started, step, aborted, completed; written in the
transaction that made it happen, so never twice."""

rollout_observations = Table(
    "rollout_observations",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("rollout_id", Integer, ForeignKey("rollouts.id", ondelete="CASCADE"), nullable=False),
    Column("holder", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("observed_at", Float, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("buckets", JSON, nullable=False),
    Index("ix_rollout_observations_rollout_id_observed_at", "rollout_id", "observed_at"),
)
"""What each serving process measured of a rollout's versions since its last report
(``registry/rollout_observations.py``): requests, 5xx answers and latency counts per
bucket of ``observability/metrics.LATENCY_BUCKETS_S`` (+Inf last)."""

alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(160), primary_key=True),
    Column("model", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("since", Float, nullable=True),
    Column("last_bad", Float, nullable=True),
    Column("evaluated_at", Float, nullable=True),
    Column("value", Float, nullable=True),
    Column("version", Integer, nullable=True),
)
"""Each alert rule's state (``registry/alerts.py``) as its last evaluation left it, so a
restart or another replica taking over the evaluation keeps a pending or firing
episode; times in seconds since the epoch."""

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("rule", String(160), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=True),
    Column("metric", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("since", Float, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("op", String(2), nullable=False),
    Column("severity", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_alert_events_model_at", "model", "at"),
)
"""Every change of an alert rule's state (pending, firing, resolved, cleared), and
what its action did (``note``)."""

load_tests = Table(
    "load_tests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("protocol", String(16), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("slo", Text, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("by", String(200), nullable=True),
    Index("ix_load_tests_model_version_started_at", "model", "version", "started_at"),
)
"""What ``servewell loadtest`` ran against a model version (``registry/loadtests.py``):
its settings (concurrency steps or rate, duration, ramp), the SLO text and verdict, and a
summary per step (throughput, latency quantiles, errors by status). By model name and
version number, as the prediction log: a record outlives nothing it points at."""

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("owner", String(200), nullable=True),
    Column("input_format", String(16), nullable=False),
    Column("id_column", String(200), nullable=True),
    Column("chunk_rows", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("rows_total", BigInteger, nullable=True),
    Column("rows_done", BigInteger, nullable=False),
    Column("rows_failed", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_owner", "owner"),
)
"""Batch prediction jobs (``registry/jobs.py``): the version pinned at submission, who
submitted it, its state and progress; its files live in the artifact store's ``jobs/``."""

job_chunks = Table(
    "job_chunks",
    metadata,
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("first_row", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("rows_failed", Integer, nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
)
"""A job's finished chunks: a row here means the chunk's results file is complete (it
was renamed into place before this row was committed)."""

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

llm_spend = Table(
    "llm_spend",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("key", String(128), nullable=False),
    Column("model", String(128), nullable=False),
    Column("day", String(10), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    UniqueConstraint("key", "model", "day", name="uq_llm_spend_key_model_day"),
    Index("ix_llm_spend_day", "day"),
)
"""LLM calls per key (its name; ``anonymous`` without one), model (the one that
answered) and UTC day (``2026-12-01``): counts added to in batches
(``registry/spend.py``), read by the budgets and ``servewell usage``."""

ended_sessions = Table(
    "ended_sessions",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_ended_sessions_expires_at", "expires_at"),
)
"""Dashboard sessions signed out before they expired (``registry/ended_sessions.py``):
the session cookie's nonce and when the cookie would have expired (seconds since the
epoch); a row is deleted once that time has passed."""
