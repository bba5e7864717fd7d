"""A ``v2`` remote model: each request's inputs sent to an Open Inference Protocol
server (Triton, MLServer, KServe, another servewell) as V2 JSON, its outputs read back as
the registered signature says."""

from __future__ import annotations

from typing import Any

import orjson

from servewell.core import codec
from servewell.core.deadline import Deadline
from servewell.errors import InvalidInput, ModelFailed
from servewell.serving.backend import Array, UpstreamBackend
from servewell.serving.reply import NUMPY_JSON


class RemoteV2Backend(UpstreamBackend):
    """Calls ``spec.model`` on a V2 upstream, as version ``version`` of ``model``."""

    platform = "remote_v2"

    async def predict(
        self, inputs: dict[str, Array], deadline: Deadline | None
    ) -> dict[str, Array]:
        body = orjson.dumps(self._request(inputs), option=NUMPY_JSON)
        content = await self.upstream.post(f"{self.spec.v2_model_path}/infer", body, deadline)
        return self._outputs(content)

    def _request(self, inputs: dict[str, Array]) -> dict[str, Any]:
        tensors = []
        for spec in self.signature.inputs:
            _, shape, data = codec.to_json(inputs[spec.name])
            tensors.append(
                {"name": spec.name, "datatype": spec.datatype, "shape": shape, "data": data}
            )
        outputs = [{"name": spec.name} for spec in self.signature.outputs]
        return {"inputs": tensors, "outputs": outputs} if outputs else {"inputs": tensors}

    def _outputs(self, content: bytes) -> dict[str, Array]:
        """The registered outputs from the upstream's answer; ModelFailed when it lacks
        one or gives one that does not decode (never quoting the body)."""
        try:
            document = orjson.loads(content)
            given = {t["name"]: t for t in document["outputs"] if isinstance(t, dict)}
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ModelFailed(f"{self.label}: its upstream's answer is not V2 JSON") from exc
        outputs: dict[str, Array] = {}
        for spec in self.signature.outputs:
            tensor = given.get(spec.name)
            if tensor is None:
                raise ModelFailed(f"{self.label}: its upstream gave no output '{spec.name}'")
            try:
                shape = codec.check_shape(spec.name, tensor.get("shape"))
                outputs[spec.name] = codec.from_json(
                    spec.name, spec.datatype, shape, tensor.get("data")
                )
            except InvalidInput as exc:
                raise ModelFailed(
                    f"{self.label}: its upstream's output '{spec.name}' does not decode as "
                    f"{spec.datatype} {list(spec.shape)}"
                ) from exc
        return outputs
