"""The protocol-neutral inference entry: every adapter (V2, REST, ...) ends up here."""

from __future__ import annotations

from servewell.core.inference import InferRequest, InferResponse
from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits, validate_inputs
from servewell.errors import InvalidInput, NotFound
from servewell.observability import current_request
from servewell.serving.deployment import Deployment
from servewell.serving.pool import ModelPool


class Predictor:
    """Resolves a request's model, validates its inputs, and runs them batched."""

    def __init__(self, pool: ModelPool, limits: InputLimits) -> None:
        self.pool = pool
        self.limits = limits

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
        self, request: InferRequest, deployment: Deployment | None = None
    ) -> InferResponse:
        """Predict; raises InvalidInput (and the model's errors) on the way."""
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
        outputs, batch_size = await deployment.predict(inputs)
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
        )
