"""The protocol-neutral inference entry: every adapter (V2, REST, ...) ends up here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from servewell.core.deadline import Deadline
from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidInput, NotFound
from servewell.observability import ServingMetrics, current_request
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool
from servewell.serving.postprocess import filter_outputs
from servewell.settings import OutputFilterSettings

Outputs = dict[str, np.ndarray[Any, Any]]


class Predictor:
    """The gateway's model steps: resolve a request's model, validate its inputs, run
    them batched, filter the outputs. No protocol, guard or cache: the CLI's ``predict``
    and batch jobs call it as it is; ``serving.gateway`` puts the rest around it."""

    def __init__(
        self,
        pool: ModelPool,
        limits: InputLimits,
        filter_for: Callable[[str], OutputFilterSettings | None] = lambda model: None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.pool = pool
        self.limits = limits
        self.filter_for = filter_for
        """A model's output filter rule, or None (``Settings.model(name).output_filters``)."""
        self.metrics = metrics
        # Each model's rule, asked once: settings never change, and this is every request.
        self._rules: dict[str, OutputFilterSettings | None] = {}

    def resolve(self, ref: ModelRef) -> Deployment:
        """The deployment a reference names (aliases are resolved when models load)."""
        if ref.alias is not None:
            raise NotFound(
                f"model '{ref.name}': ask for a version number, not the alias '{ref.alias}'",
                model=ref.name,
            )
        deployment = self.pool.get(ref.name, ref.version)
        record = current_request()
        if record is not None:
            record.model = deployment.name
            record.version = str(deployment.number)
        return deployment

    async def infer(
        self,
        request: InferRequest,
        deployment: Deployment | None = None,
        *,
        deadline: Deadline | None = None,
    ) -> InferResponse:
        """Predict; raises InvalidInput (and the model's errors) on the way, and
        DeadlineExceeded once ``deadline`` passes."""
        deployment = deployment or self.resolve(request.model)
        signature = deployment.signature
        wanted = request.outputs
        if wanted is not None:
            known = {spec.name for spec in signature.outputs}
            unknown = [name for name in wanted if name not in known]
            if unknown:
                raise InvalidInput(
                    f"unknown output '{unknown[0]}'; the model gives "
                    + ", ".join(f"'{name}'" for name in sorted(known))
                )
        sent: dict[str, Any] = {}
        inputs = validate_inputs(
            signature, request.inputs, self.limits, request.datatypes, sent=sent
        )
        outputs, batch_size = await deployment.predict(inputs, deadline)
        outputs = self._filtered(deployment.name, outputs)
        if wanted is not None:
            outputs = {name: outputs[name] for name in wanted}
        record = current_request()
        if record is not None:
            record.batch_size = batch_size
        return InferResponse(
            model=deployment.name,
            version=deployment.number,
            outputs=outputs,
            id=request.id,
            batch_size=batch_size,
            sent=sent or None,
        )

    def _filtered(self, model: str, outputs: Outputs) -> Outputs:
        try:
            rule = self._rules[model]
        except KeyError:
            rule = self._rules[model] = self.filter_for(model)
        if rule is None:
            return outputs
        outcome = filter_outputs(outputs, rule)
        if self.metrics is not None:
            for kind, count in outcome.findings.items():
                self.metrics.output_filter.labels(model, kind, rule.policy).inc(count)
        return outcome.outputs
