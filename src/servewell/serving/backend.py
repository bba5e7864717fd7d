"""A model served by awaiting it on the event loop: no batch queue, no model thread.

A remote model is one (its upstream does the work; a call is I/O). A
:class:`~servewell.serving.deployment.Deployment` given an :class:`AsyncBackend` instead
of a :class:`~servewell.runtime.Runtime` awaits :meth:`AsyncBackend.predict` directly;
everything around the call (validation, the deadline, the fallback chain, output
filters, metrics, the prediction log) is the same, and the gateway cannot tell.

The backend makes its own attempts: :meth:`start` hands it the deployment's circuit
breaker and retry counter, which it uses for each one (see
:mod:`servewell.serving.upstream`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from servewell.core.deadline import Deadline
from servewell.core.remote_spec import RemoteSpec
from servewell.core.signature import Signature
from servewell.serving.upstream import Upstream

if TYPE_CHECKING:
    from servewell.serving.breaker import CircuitBreaker

Array = np.ndarray[Any, Any]


class AsyncBackend(ABC):
    """Serves one model version by awaiting calls on the event loop."""

    platform: str = "remote"
    """What runs the model, in the V2 metadata's words."""

    @abstractmethod
    def load(self) -> None:
        """Get ready without the event loop (on a thread): read credentials, check the
        spec; raises a servewell error naming what is wrong."""

    @abstractmethod
    def describe(self) -> Signature:
        """The signature registered with the version."""

    @abstractmethod
    async def start(self, breaker: CircuitBreaker | None, on_retry: Callable[[], None]) -> None:
        """Open connections; ``breaker`` admits each attempt, ``on_retry`` counts retries."""

    @abstractmethod
    async def predict(
        self, inputs: dict[str, Array], deadline: Deadline | None
    ) -> dict[str, Array]:
        """Outputs for validated inputs, as many rows as they have, within ``deadline``."""

    @abstractmethod
    async def close(self) -> None:
        """Release what :meth:`start` opened."""


class UpstreamBackend(AsyncBackend):
    """A remote model: its registered signature, and one :class:`Upstream` (pooled
    connections, breaker, retries) that its kind's :meth:`predict` calls."""

    def __init__(self, spec: RemoteSpec, signature: Signature, model: str, version: int) -> None:
        self.spec = spec
        self.signature = signature
        self.upstream = Upstream(spec, model, version)
        self.label = f"{model}@{version}"

    def load(self) -> None:
        self.upstream.load()

    def describe(self) -> Signature:
        return self.signature

    async def start(self, breaker: CircuitBreaker | None, on_retry: Callable[[], None]) -> None:
        self.upstream.breaker = breaker
        self.upstream.on_retry = on_retry
        await self.upstream.start()

    async def close(self) -> None:
        await self.upstream.close()
