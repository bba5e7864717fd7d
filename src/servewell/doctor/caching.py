"""Response caching: on for the models whose answers repeat, off for the ones tagged
``deterministic=false`` (the serving layer's own marker: it never caches those)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, passed, warned

if TYPE_CHECKING:
    from servewell.doctor.context import Context, ServedModel

ITEM = "response cache"


class CacheCheck:
    """The cache is configured, and never holds a non-deterministic model's answers."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        cache = context.settings.cache
        if not cache.enabled:
            return [
                warned(
                    ITEM,
                    "cache.enabled is false: every repeated request runs the model",
                    "cache: {enabled: true, ttl_s: 300} in servewell.yaml",
                )
            ]
        where = (
            "Redis"
            if cache.backend == "redis" or (cache.backend == "auto" and context.settings.redis_url)
            else "memory (one per worker)"
        )
        return [_model_finding(model, where) for model in context.models]


def _model_finding(model: ServedModel, where: str) -> Finding:
    deterministic = model.production is None or (
        model.production.tags.get("deterministic") != "false"
    )
    if not deterministic:
        return passed(ITEM, "tagged deterministic=false: its answers are never cached", model.name)
    if not model.settings.cache.enabled:
        return passed(ITEM, f"models.{model.name}.cache.enabled is false", model.name)
    return passed(ITEM, f"on, ttl {model.settings.cache.ttl_s:g} s, in {where}", model.name)
