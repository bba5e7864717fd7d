"""What every check looks at: the settings, the registry, the models served (each with
the version its ``production`` alias names) and, with ``--url``, the live server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from servewell.core.ref import DEFAULT_ALIAS, ModelRef
from servewell.doctor.live import MODELS_PATH, LiveServer

if TYPE_CHECKING:
    from servewell.bootstrap import Services
    from servewell.registry import ModelVersion
    from servewell.settings import ResolvedModelSettings, Settings


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model the server serves, and what production means for it."""

    name: str
    production: ModelVersion | None
    """The version ``production`` names; None: the model has no such alias."""
    settings: ResolvedModelSettings


@dataclass(frozen=True, slots=True)
class Context:
    """Everything the checks read; built once per ``servewell doctor``."""

    settings: Settings
    services: Services
    models: tuple[ServedModel, ...]
    live: LiveServer | None
    now: datetime

    @property
    def auth_on(self) -> bool:
        """Keys required: as the live server answers (its model listing refused without
        a key), else as the settings say."""
        if self.live is not None and self.live.answer(MODELS_PATH).status is not None:
            return self.live.auth_on
        return self.settings.auth.enabled

    @property
    def auth_seen(self) -> str:
        """Where :attr:`auth_on` was learnt, for the findings."""
        if self.live is not None and self.live.answer(MODELS_PATH).status is not None:
            return f"{self.live.url}{MODELS_PATH} without a key answered " + (
                "401" if self.live.auth_on else str(self.live.answer(MODELS_PATH).status)
            )
        return f"auth.enabled is {str(self.settings.auth.enabled).lower()}"


def build_context(services: Services, live: LiveServer | None, only: str | None = None) -> Context:
    """The served models (as the live server lists them, else as the settings name
    them, else every registered model), narrowed to ``only`` when given."""
    names = served_names(services, live)
    if only is not None:
        names = [name for name in names if name == only] or [only]
    models = tuple(_served(services, name) for name in names)
    return Context(services.settings, services, models, live, datetime.now(UTC))


def served_names(services: Services, live: LiveServer | None) -> list[str]:
    listed = live.served_models() if live is not None else None
    if listed is not None:
        return sorted(listed)
    refs = services.settings.server.models
    if refs:
        return sorted({ModelRef.parse(text).name for text in refs})
    return sorted(summary.name for summary in services.registry.list_models())


def _served(services: Services, name: str) -> ServedModel:
    from servewell.errors import NotFound

    try:
        production = services.registry.resolve(ModelRef(name, alias=DEFAULT_ALIAS))
    except NotFound:
        production = None
    return ServedModel(name, production, services.settings.model(name))
