"""``servewell retrain``: a registered model's recorded training configuration run
again on new data, and the challenger it makes judged against the champion.

The champion is the version the model's name resolves to (its ``production`` alias,
else its latest version). Its recorded configuration is the pipeline file
``servewell train`` kept in its ``params["pipeline"]`` (an optimized child's comes from
the version it was optimized from). The challenger is trained on the new data (plus,
when asked, logged predictions joined with their feedback labels, added to the training
part only: :mod:`~servewell.pipeline.labelled_log`), gated as ``train`` gates, and
converted to what would serve it; then both are scored through their serving runtimes
on the same rows, the new data's validation split, and compared on the gate's metrics
(:mod:`~servewell.pipeline.challenge`). Only a challenger that passes its gate and holds
its own is registered (with the recorded configuration's alias, if it names one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servewell.core.ref import ModelRef
from servewell.errors import ChallengerLost, GateFailed, InvalidData, InvalidInput
from servewell.pipeline.challenge import Compared, compare, compared_gate
from servewell.pipeline.labelled_log import LabelledLog, input_columns, read_labelled_log
from servewell.registry import ModelVersion, RegistryAccess
from servewell.serving.loading import open_runtime
from servewell.training.config import PipelineConfig, parse_config
from servewell.training.data import Dataset
from servewell.training.evaluate import Evaluation, evaluate_runtime
from servewell.training.progress import Progress, StageLog
from servewell.training.register import register_result
from servewell.training.result import PipelineResult
from servewell.training.run import train_pipeline
from servewell.training.served import Served, choose_served

#: How far up an optimized child's parents the recorded configuration is looked for.
MAX_ANCESTORS = 20


@dataclass
class Challenge:
    """A challenger, its champion, and how they compare on the same rows."""

    champion: ModelVersion
    result: PipelineResult
    served: Served
    champion_scores: Evaluation
    compared: list[Compared]
    margin: float
    feedback: LabelledLog | None = None

    @property
    def won(self) -> bool:
        return all(item.passed for item in self.compared)

    @property
    def champion_label(self) -> str:
        return f"{self.champion.name}@{self.champion.version}"

    def to_dict(self) -> dict[str, Any]:
        """What the challenger's report keeps (``challenge``)."""
        return {
            "champion": self.champion_label,
            "margin": self.margin,
            "won": self.won,
            "rows": self.champion_scores.rows,
            "champion_dropped": self.champion_scores.dropped,
            "compared": [item.to_dict() for item in self.compared],
            "metrics": {
                "champion": self.champion_scores.metrics.headline(),
                "challenger": self.served.metrics.headline(),
            },
            "feedback": None if self.feedback is None else self.feedback.to_dict(),
        }


def challenge_champion(
    access: RegistryAccess,
    name: str,
    dataset: Dataset,
    *,
    with_feedback: bool = False,
    margin: float = 0.0,
    progress: Progress | None = None,
) -> Challenge:
    """The challenger trained, gated and compared with the champion; nothing registered."""
    if not margin >= 0:  # NaN too
        raise InvalidInput(f"--margin is {margin}; give 0 or more (in the metrics' units)")
    champion = access.registry.resolve(ModelRef(name))
    config = recorded_config(access, champion).with_overrides(name=name)
    target = config.target
    assert target is not None  # a recorded configuration has its target
    log = StageLog(progress)
    feedback = None
    if with_feedback:
        with log.stage("feedback") as summary:
            like = _a_target(dataset, target)
            feedback = read_labelled_log(access, name, champion.signature, target, like)
            summary.lines = feedback.lines()
    result = train_pipeline(
        dataset, config, progress, extra_rows=None if feedback is None else feedback.frame
    )
    result.stages[:0] = log.summaries  # the join comes first in the trace
    log = StageLog(progress)
    served = choose_served(log, result)
    with log.stage("champion") as summary:
        scores = _score_champion(access, champion, result)
        gate = compared_gate(config.gate, result.task)
        compared = compare(gate, scores.metrics, served.metrics, margin)
        summary.rows_in = summary.rows_out = scores.rows
        summary.columns_in = summary.columns_out = len(result.plan.inputs)
        summary.lines = [f"{champion.name}@{champion.version} scored on the same validation rows"]
        summary.lines += [item.message for item in compared]
        summary.passed = all(item.passed for item in compared)
    result.stages.extend(log.summaries)
    challenge = Challenge(champion, result, served, scores, compared, margin, feedback)
    result.challenge = challenge.to_dict()
    return challenge


def _a_target(dataset: Dataset, target: str) -> Any:
    """One of the new data's targets (the kind of value a joined label must be), or None."""
    if target not in dataset.frame:
        return None
    known = dataset.frame[target].dropna()
    return known.iloc[0] if len(known) else None


def register_challenger(
    access: RegistryAccess,
    challenge: Challenge,
    progress: Progress | None = None,
    *,
    by: str | None = None,
) -> ModelVersion:
    """Register a challenger that passed its gate and held its own against the champion."""
    result = challenge.result
    if not result.passed:
        raise GateFailed(result.failures)
    if not challenge.won:
        losses = [item.message for item in challenge.compared if not item.passed]
        if challenge.margin:
            losses.append(f"margin {challenge.margin:g}")
        raise ChallengerLost(challenge.champion_label, losses)
    return register_result(access, result, progress, by=by, served=challenge.served)


def retrain_columns(access: RegistryAccess, name: str) -> list[str]:
    """The columns a table to retrain ``name`` on may hold: its champion's inputs and the
    target (so a one-input model's one-column CSV reads as a table)."""
    champion = access.registry.resolve(ModelRef(name))
    target = recorded_config(access, champion).target
    return [*input_columns(champion.signature), *([target] if target else [])]


def recorded_config(access: RegistryAccess, version: ModelVersion) -> PipelineConfig:
    """The pipeline file ``servewell train`` kept with ``version`` (or with the version
    an optimized child was made from)."""
    found: ModelVersion | None = version
    for _ in range(MAX_ANCESTORS):
        if found is None:
            break
        recorded = found.params.get("pipeline")
        if isinstance(recorded, dict):
            where = f"{found.name}@{found.version}'s recorded training configuration"
            return parse_config(recorded, source=where)
        parent = found.parent
        found = (
            None
            if parent is None or parent.version is None
            else (access.registry.get_version(parent.name, parent.version))
        )
    raise InvalidInput(
        f"{version.name}@{version.version} was not trained by servewell train: it has no "
        "recorded training configuration; retrain needs one"
    )


def _score_champion(
    access: RegistryAccess, champion: ModelVersion, result: PipelineResult
) -> Evaluation:
    """The champion, as it serves, on the challenger's validation rows."""
    frame, target = result.validation_frame, result.config.target
    assert frame is not None  # train_pipeline keeps the validation rows
    assert target is not None
    known = {str(label) for label in champion.signature.class_labels or ()}
    new = sorted({str(label) for label in result.labels or ()} - known)
    if known and new:
        raise InvalidData(
            f"the new data has class(es) {', '.join(new[:5])} that the champion "
            f"{champion.name}@{champion.version} does not know (its classes: "
            f"{', '.join(sorted(known))}), so the two cannot be compared on the same rows"
        )
    runtime = open_runtime(access, champion)
    try:
        return evaluate_runtime(runtime, frame, target, positive_label=result.positive_label)
    finally:
        runtime.close()
