"""Route groups in a running server: a chat request whose ``model`` names a group
(``route_groups`` in the settings) is answered by the model the group's rules choose
(``core/llm_routing.choose``), before the model is resolved.

A group's classifier rule asks a served text classifier (``runtime/text.py``) through
the same model steps as any request (``Predictor.infer``: validation, batching, its
breaker, the request's deadline), only when the rules before it did not hold. Its
answer's ``label`` is what the rule compares.

Start-up checks what the settings cannot (:meth:`RouteGroups.check`, on the registry,
before any model loads): no group is named like a served model, its candidates and
classifier are served, and the classifier is a text classifier (one text input, a
``label`` output, class labels). Each is one InvalidConfig naming the group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from servewell.core.deadline import Deadline, deadline_for
from servewell.core.inference import InferRequest
from servewell.core.llm_routing import Choice, choose, classifier_needed
from servewell.core.ref import ModelRef
from servewell.core.signature import Signature
from servewell.errors import InvalidConfig
from servewell.observability.llm_metrics import LlmMetrics
from servewell.serving.predictor import Predictor
from servewell.settings import RouteGroup

ROUTE_HEADER = b"x-servewell-route"


class RouteGroups:
    def __init__(
        self, groups: Mapping[str, RouteGroup], predictor: Predictor, metrics: LlmMetrics
    ) -> None:
        self.groups = dict(groups)
        self.predictor = predictor
        self.metrics = metrics

    def __contains__(self, name: object) -> bool:
        return name in self.groups

    def check(self, served: list[str], signature_of: Callable[[str], Signature]) -> None:
        """InvalidConfig when a group is named like a served model, names a model or
        classifier not ``served``, or a classifier whose signature (``signature_of`` its
        name: the registry's, of the version served) is not a text classifier's."""
        known = set(served)
        for name, group in self.groups.items():
            if name in known:
                raise InvalidConfig(f"route_groups.{name}: a served model has the group's name")
            wanted = [*group.models, *([group.classifier] if group.classifier else [])]
            missing = [model for model in wanted if model not in known]
            if missing:
                raise InvalidConfig(
                    f"route_groups.{name}: model '{missing[0]}' is not served here "
                    f"(served: {', '.join(sorted(known)) or 'none'})"
                )
            if group.classifier and _text_input(signature_of(group.classifier)) is None:
                raise InvalidConfig(
                    f"route_groups.{name}: '{group.classifier}' is not a text classifier "
                    "(one BYTES input, a 'label' output and class labels)"
                )

    async def route(
        self,
        name: str,
        prompt_text: str,
        prompt_tokens: int,
        deadline: Deadline | None = None,
    ) -> Choice:
        """The model group ``name`` picks for this prompt, counted in the metrics."""
        group = self.groups[name]
        label = None
        classifier = classifier_needed(group, prompt_text, prompt_tokens)
        if classifier is not None:
            label = await self._label(classifier, prompt_text, deadline)
        choice = choose(group, prompt_text, prompt_tokens, label)
        self.metrics.count_route(name, choice.model, choice.rule)
        return choice

    async def _label(self, classifier: str, text: str, deadline: Deadline | None) -> str:
        deployment = self.predictor.resolve(ModelRef(classifier))
        input_name = _text_input(deployment.signature) or "text"
        request = InferRequest(
            model=ModelRef(classifier),
            inputs={input_name: np.array([text], dtype=np.object_)},
            outputs=("label",),
        )
        due = deadline or deadline_for(None, deployment.timeout_ms)  # the classifier's own
        response = await self.predictor.infer(request, deployment, deadline=due)
        value = response.outputs["label"].reshape(-1)[0]
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def route_header(group: str, choice: Choice) -> tuple[bytes, bytes]:
    """``X-Servewell-Route: <group>; model=<m>; rule=<r>``."""
    return ROUTE_HEADER, f"{group}; model={choice.model}; rule={choice.rule}".encode()


def _text_input(signature: Signature) -> str | None:
    """The name of a text classifier's one input, or None when it is not one."""
    inputs = signature.inputs
    if len(inputs) != 1 or inputs[0].datatype != "BYTES" or signature.class_labels is None:
        return None
    if "label" not in {spec.name for spec in signature.outputs}:
        return None
    return inputs[0].name
