"""Rate limiting and API keys: a rate chosen for every caller (the default or each
key's own) and keys scoped to what they do (no admin key for predictions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from servewell.doctor.finding import Finding, failed, passed, warned

if TYPE_CHECKING:
    from servewell.doctor.context import Context
    from servewell.registry.keys import ApiKey

ITEM = "rate limiting"
KEYS_ITEM = "api keys"
KEY_FIX = "servewell keys create --name <app> --scopes predict --models <model> --rate 100/second"


class RateLimitCheck:
    """A default rate or per-key rates, with keys on."""

    item = ITEM

    def run(self, context: Context) -> list[Finding]:
        limits = context.settings.rate_limits
        if not limits.enabled:
            return [
                failed(
                    ITEM,
                    "rate_limits.enabled is false: one caller can take the whole server",
                    "rate_limits: {enabled: true, default_rate: 600/minute} in servewell.yaml",
                )
            ]
        if not context.auth_on:
            return [
                failed(
                    ITEM,
                    f"API keys are off ({context.auth_seen}): no per-key budget, every "
                    f"caller shares its address's anonymous_rate ({limits.anonymous_rate})",
                    f"serve without --no-auth (auth.enabled: true), then {KEY_FIX}",
                )
            ]
        keys = _predicting_keys(context)
        unrated = [key.name for key in keys if key.rate is None]
        if "default_rate" in limits.model_fields_set or (keys and not unrated):
            chosen = f"default_rate {limits.default_rate}"
            rated = [f"{key.name}: {key.rate}" for key in keys if key.rate is not None]
            return [passed(ITEM, "; ".join([chosen, *rated]))]
        return [
            warned(
                ITEM,
                f"keys {', '.join(unrated) or '(none yet)'} get the built-in default "
                f"{limits.default_rate}, which nobody chose",
                "rate_limits: {default_rate: 600/minute} in servewell.yaml, or give each key "
                "its own (servewell keys create ... --rate 100/second)",
            )
        ]


class KeyScopeCheck:
    """Keys exist for callers, and predictions need no admin key. The key store does
    not record which key was last used for what, so this judges what each key may do."""

    item = KEYS_ITEM

    def run(self, context: Context) -> list[Finding]:
        if not context.auth_on:
            return []  # security and rate limiting say it: keys are off
        keys = _predicting_keys(context)
        admins = [key.name for key in keys if "admin" in key.scopes]
        scoped = [key.name for key in keys if "admin" not in key.scopes]
        if not scoped:
            found = (
                f"only admin keys ({', '.join(admins)}) can predict: callers hold keys that "
                "can also move aliases and load models"
                if admins
                else "no active key may predict: every caller gets 401"
            )
            return [failed(KEYS_ITEM, found, KEY_FIX)]
        found = f"predict keys: {', '.join(scoped)}"
        if admins:
            found += f"; admin keys (keep them off the request path): {', '.join(admins)}"
        return [passed(KEYS_ITEM, found + " (last use is not recorded)")]


def _predicting_keys(context: Context) -> list[ApiKey]:
    from servewell.core.apikey import grants
    from servewell.registry.keys import ApiKeyStore

    active = ApiKeyStore(context.services.registry).list(include_revoked=False)
    return [key for key in active if grants(key.scopes, "predict")]
