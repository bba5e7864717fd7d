"""The model steps on a pool of one version loaded in this process: what the CLI's
``predict``, ``servewell batch`` and a batch-job worker run, with no server around."""

from __future__ import annotations

from servewell.core.ref import ModelRef
from servewell.core.validation import InputLimits
from servewell.observability import ServingMetrics
from servewell.registry import ModelVersion, RegistryAccess
from servewell.serving.pool import ModelPool
from servewell.serving.predictor import Predictor
from servewell.settings import ValidationSettings


def input_limits(validation: ValidationSettings) -> InputLimits:
    """The request limits the settings give (``validation:``)."""
    return InputLimits(validation.max_rows, validation.max_text_bytes, validation.max_json_depth)


async def load_predictor(access: RegistryAccess, version: ModelVersion) -> Predictor:
    """A :class:`Predictor` over ``version`` alone, loaded, warmed up and started (close
    it with ``predictor.pool.close()``)."""
    from prometheus_client import CollectorRegistry

    settings = access.settings
    ref = ModelRef(version.name, version=version.version)
    pool = ModelPool(access, [ref], ServingMetrics(CollectorRegistry()))
    try:
        await pool.load(strict=True)
    except BaseException:
        await pool.close()
        raise
    return Predictor(
        pool, input_limits(settings.validation), lambda model: settings.model(model).output_filters
    )
