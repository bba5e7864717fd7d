"""The protocol-neutral inference entry: every adapter (V2, REST, ...) ends up here."""

from __future__ import annotations

from typing import Any

import numpy as np

from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidInput, NotFound
from servewell.observability import ServingMetrics, current_request
from servewell.serving.deployment import Deployment, Inputs
from servewell.serving.pool import ModelPool
from servewell.serving.postprocess import filter_outputs
from servewell.serving.protection import Protection

Outputs = dict[str, np.ndarray[Any, Any]]


class Predictor:
    """Resolves a request's model, validates its inputs, and runs them batched."""

    def __init__(
        self,
        pool: ModelPool,
        limits: InputLimits,
        protection: Protection | None = None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.pool = pool
        self.limits = limits
        self.protection = protection
        self.metrics = metrics
        self._evictions_seen = 0

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
        use_cache: bool = True,
    ) -> InferResponse:
        """Predict; raises InvalidInput (and the model's errors) on the way.

        ``use_cache=False`` (``Cache-Control: no-cache``) skips the cache lookup.
        """
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
        inputs = validate_inputs(signature, request.inputs, self.limits)
        outputs, batch_size, cache_outcome = await self._predict(deployment, inputs, use_cache)
        outputs = self._filtered(deployment.name, outputs)
        if wanted is not None:
            outputs = {name: outputs[name] for name in wanted}
        record = current_request()
        if record is not None:
            record.batch_size = batch_size
            record.cache = cache_outcome
        return InferResponse(
            model=deployment.name,
            version=deployment.number,
            outputs=outputs,
            id=request.id,
            batch_size=batch_size,
            cache=cache_outcome,
        )

    async def _predict(
        self, deployment: Deployment, inputs: Inputs, use_cache: bool
    ) -> tuple[Outputs, int, str]:
        """The model's outputs, through the response cache when it is on for this model."""
        layer = self.protection.cache if self.protection is not None else None
        deterministic = deployment.version.tags.get("deterministic", "true") != "false"
        if layer is None or not layer.is_enabled_for(deployment.name, deterministic):
            outputs, batch_size = await deployment.predict(inputs)
            return outputs, batch_size, ""
        cached = await layer.through(
            deployment.name,
            deployment.number,
            inputs,
            lambda: deployment.predict(inputs),
            bypass=not use_cache,
        )
        outcome = "hit" if cached.hit else "miss" if use_cache else "bypass"
        if self.metrics is not None:
            self.metrics.count_cache(deployment.name, outcome)
            evictions = layer.cache.stats.evictions
            if evictions > self._evictions_seen:
                self.metrics.cache_evictions.inc(evictions - self._evictions_seen)
                self._evictions_seen = evictions
        return cached.outputs, cached.batch_size, outcome

    def _filtered(self, model: str, outputs: Outputs) -> Outputs:
        rule = self.protection.filter_for(model) if self.protection is not None else None
        if rule is None:
            return outputs
        outcome = filter_outputs(outputs, rule)
        if self.metrics is not None:
            for kind, count in outcome.findings.items():
                self.metrics.output_filter.labels(model, kind, rule.policy).inc(count)
        return outcome.outputs
