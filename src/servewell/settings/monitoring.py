"""Monitoring settings: the prediction log, alert rules and where alerts go
(``monitoring:``), and what each model logs (``models.<name>.monitoring``).

An alert rule is parsed here into typed parts, so a misspelt metric, an operator that
is not one, or a window like ``1x`` stops the server at start-up with one line naming
it; how a rule's state moves is :mod:`servewell.core.alerting`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from servewell.settings.section import Section

#: Metrics a rule may watch, plain: a window's figure.
PLAIN_METRICS = (
    "accuracy",
    "macro_f1",
    "roc_auc",
    "mae",
    "rmse",
    "r2",
    "error_rate",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "prediction_drift",
    "label_coverage",
)
#: Metrics of one class or one feature, written ``name[<class or feature>]``.
BRACKETED_METRICS = ("precision", "recall", "f1", "drift_psi")

_UNITS_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_METRIC = re.compile(r"([a-z0-9_]+)(?:\[(.+)\])?")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True, slots=True)
class Metric:
    """What a rule watches: ``recall[fraud]`` is ``Metric("recall", "fraud")``."""

    name: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name}[{self.argument}]"


@dataclass(frozen=True, slots=True)
class Window:
    """The rows a rule's metric is computed on: the last ``seconds``, or the last
    ``rows`` logged predictions."""

    seconds: float | None = None
    rows: int | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.text


MAX_DURATION_S = 100 * 365 * 86400.0
"""The longest duration taken (a window, ``--since``, a rule's ``for``)."""
MAX_WINDOW_ROWS = 2**62
"""The largest window of rows (a database integer holds it)."""


def parse_duration_s(text: str) -> float:
    """``"90s"``, ``"10m"``, ``"1h30m"``, ``"1d"`` (ms, s, m, h, d, w) in seconds."""
    spelled = text.strip().replace(" ", "")
    if spelled == "0":
        return 0.0
    parts = _DURATION.findall(spelled)
    if not parts or "".join(number + unit for number, unit in parts) != spelled:
        raise ValueError(
            f"'{text}' is not a duration: give a number and a unit (ms, s, m, h, d, w), "
            "e.g. 30s, 10m, 1h30m, 1d"
        )
    seconds = sum(float(number) * _UNITS_S[unit] for number, unit in parts)
    if seconds > MAX_DURATION_S:  # past what a date can go back (and inf)
        raise ValueError(f"'{text}' is longer than 100 years")
    return seconds


def parse_metric(text: Any) -> Metric:
    if isinstance(text, Metric):
        return text
    found = _METRIC.fullmatch(str(text).strip())
    name, argument = (found.group(1), found.group(2)) if found else (str(text), None)
    if name in PLAIN_METRICS and argument is None:
        return Metric(name)
    if name in BRACKETED_METRICS and argument:
        return Metric(name, argument.strip())
    if name in BRACKETED_METRICS:
        raise ValueError(f"metric '{text}' needs a class or feature: {name}[<name>]")
    known = ", ".join([*PLAIN_METRICS, *(f"{m}[...]" for m in BRACKETED_METRICS)])
    raise ValueError(f"unknown metric '{text}'; known: {known}")


def parse_window(text: Any) -> Window:
    """``1h`` or ``1d`` (a time window) or ``1000`` (the last 1000 predictions)."""
    if isinstance(text, Window):
        return text
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"window {text!r}: give a duration (1h, 1d) or a row count (1000)")
    spelled = str(text).strip()
    if spelled.isdigit():
        if int(spelled) < 1:
            raise ValueError("a window of rows must hold at least 1 row")
        if int(spelled) > MAX_WINDOW_ROWS:
            raise ValueError(f"a window of rows holds at most {MAX_WINDOW_ROWS:,} rows")
        return Window(rows=int(spelled), text=spelled)
    try:
        seconds = parse_duration_s(spelled)
    except ValueError:
        raise ValueError(
            f"window '{text}': give a duration (30m, 1h, 1d) or a row count (1000)"
        ) from None
    if seconds <= 0:
        raise ValueError(f"window '{text}' is empty")
    return Window(seconds=seconds, text=spelled)


def _duration(value: Any) -> Any:
    """A duration must say its unit: a bare number (other than 0) is refused, since
    ``for: 10`` could mean seconds or minutes."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"{value!r} has no unit: write e.g. {value}s or {value}m")
    if isinstance(value, str):
        return parse_duration_s(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]


class AlertRule(Section):
    """One alert rule: page (or act) when ``metric op threshold`` has held over
    ``window`` for ``for``. The states and what resets them:
    :mod:`servewell.core.alerting`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    """Unique among the rules; a Prometheus label value (letters, digits, ``_.:-``)."""
    model: str
    """The model (name) the rule watches: its ``production`` version and every arm."""
    metric: Annotated[Metric, BeforeValidator(parse_metric)]
    """One of :data:`PLAIN_METRICS`, or :data:`BRACKETED_METRICS` with a class or feature."""
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    """How the value compares with the threshold when the rule's condition holds."""
    threshold: float
    window: Annotated[Window, BeforeValidator(parse_window)] = Window(seconds=3600, text="1h")
    """The rows the metric is computed on: ``1h``, ``1d`` or a count like ``1000``."""
    for_s: Duration = Field(default=0.0, alias="for")
    """How long the condition must hold before the rule fires (``for: 10m``); 0 fires
    at the first bad evaluation, as Prometheus does."""
    clear_for_s: Duration | None = Field(default=None, alias="clear_for")
    """How long without a bad evaluation, ended by a good one, before a pending rule
    clears or a firing one resolves; unset: two evaluation intervals, so one good
    evaluation between bad ones changes nothing."""
    severity: str = "page"
    """Passed on to the sinks (a label of the exported Prometheus rule)."""
    action: Literal["none", "rollback"] = "none"
    """``rollback``: when the rule fires for the ``production`` version, move the alias
    back to the previous version."""

    @field_validator("name")
    @classmethod
    def _name_is_a_label(cls, name: str) -> str:
        if not _RULE_NAME.fullmatch(name):
            raise ValueError(f"alert name '{name}' may hold only letters, digits and _.:-")
        return name

    @property
    def exported_name(self) -> str:
        """Its Prometheus alert name (a metric name): ``acc-drop`` is
        ``servewell_acc_drop`` (the rule's own name is its ``rule`` label). Not
        injective (``a.b`` and ``a_b`` give one), so two rules may not share one."""
        return "servewell_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)

    @field_validator("model", "severity")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class WebhookSettings(Section):
    """One webhook: every alert event is POSTed to it as JSON, retried with backoff."""

    url: str
    """``http://`` or ``https://`` URL."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Longest one attempt may take (at most a minute: a receiver that takes longer is
    as good as down, and its queue would fill behind it)."""
    max_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts per event (exponential backoff between them)."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+\S*", url):
            raise ValueError(f"webhook url '{url}' must be an http:// or https:// URL")
        return url


class MonitoringSettings(Section):
    """The prediction log, rolling windows and alert rules."""

    buffer_size: int = Field(default=100_000, ge=1)
    """Predictions held in memory before they are written; past it, new records are
    dropped and counted (serving never waits)."""
    flush_interval_s: float = Field(default=1.0, gt=0)
    """How often the buffer is written to the database."""
    evaluation_interval_s: float = Field(default=10.0, gt=0)
    """How often alert rules are evaluated (also when new labels arrive)."""
    sketch_bucket_s: float = Field(default=60.0, gt=0, le=3600)
    """The time buckets of the window sketches (a time window merges the buckets it
    overlaps; closed ones are compacted into hours); best a divisor of an hour."""
    retention_days: float = Field(default=30.0, gt=0)
    """Logged predictions and labels older than this are pruned (at start and hourly,
    by each server, a batch of rows a transaction; the ``parquet`` store by whole days)."""
    store: Literal["database", "parquet"] = "database"
    """Where logged predictions are kept: ``database``, the registry database's
    ``predictions`` table; ``parquet``, Parquet files in the artifact store
    (``predictions/model=<name>/date=<day>/``), for volume (needs pyarrow). Labels are
    in the database either way."""
    parquet_file_rows: int = Field(default=100_000, ge=1)
    """``store: parquet``: a server writes a model's file once it holds this many rows..."""
    parquet_file_age_s: float = Field(default=60.0, gt=0)
    """... or its oldest row has waited this long (rows are readable once written)."""
    hash_key: str | None = None
    """The key of the hashes ``log_inputs: hash`` keeps (set it, as a secret, so nobody
    can recompute the hash of a guessed value; unset: a fixed key, equal values still
    hash alike)."""
    rollback_cooldown_s: Duration = 1800.0
    """After an alert rule moved a model's ``production`` back, no rule moves it again
    for this long (``30m`` by default): one bad release is undone, while a second
    rollback (the previous version breaking the same rule, a threshold that every
    version misses) waits for a person instead of walking back through the history."""
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    alerts: list[AlertRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> MonitoringSettings:
        exported: dict[str, AlertRule] = {}  # a name gives one exported name: checks both
        for rule in self.alerts:
            other = exported.setdefault(rule.exported_name, rule)
            if other is rule:
                continue
            if other.name == rule.name:
                raise ValueError(f"two alert rules are named '{rule.name}'")
            raise ValueError(
                f"alert rules '{other.name}' and '{rule.name}' both export to Prometheus as "
                f"{rule.exported_name}; rename one"
            )
        return self

    def clear_for_s(self, rule: AlertRule) -> float:
        """How long ``rule`` waits without a bad evaluation before it clears."""
        if rule.clear_for_s is not None:
            return rule.clear_for_s
        return 2 * self.evaluation_interval_s


class ModelMonitoringSettings(Section):
    """What one model's prediction log keeps (``models.<name>.monitoring``)."""

    sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of predictions logged (1.0: all, 0: none)."""
    log_inputs: Literal["full", "hash", "none"] | None = None
    """``full``: the values; ``hash``: a keyed hash of each; ``none``: left out. Unset:
    ``full`` for numbers, ``hash`` for text."""
