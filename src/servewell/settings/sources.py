"""Where settings come from, and the refusal of settings that do not exist.

A key no section has a field for — in ``servewell.yaml`` or as a ``SERVEWELL_*``
variable, at any depth — is one :class:`InvalidConfig` naming it and the nearest valid
name, instead of being ignored (pydantic-settings skips variables it has no field for).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_settings import EnvSettingsSource, YamlConfigSettingsSource

from servewell.errors import InvalidConfig
from servewell.settings.models import by_canonical_name

PREFIX = "SERVEWELL_"

NOT_SETTINGS = frozenset(
    {
        "SERVEWELL_CONFIG",
        "SERVEWELL_STARTUP_REPORT",
        "SERVEWELL_TEST_POSTGRES",
        "SERVEWELL_TEST_REDIS",
        "SERVEWELL_TEST_DEADLINE_S",
    }
)
"""``SERVEWELL_`` variables that are not settings: the settings file's path, where
server processes report a failed start-up (``serving/startup.py``), and the test
suite's PostgreSQL, Redis and per-test deadline."""


class CheckedEnvironment(EnvSettingsSource):
    """``SERVEWELL_*`` variables; one that names no setting is refused."""

    def __call__(self) -> dict[str, Any]:
        for name in sorted(os.environ):
            if name.upper().startswith(PREFIX) and name.upper() not in NOT_SETTINGS:
                _refuse_unknown_variable(self.settings_cls, name)
        return _models_by_canonical_name(super().__call__(), "the environment")


class CheckedYaml(YamlConfigSettingsSource):
    """The settings file; a key that names no setting is refused."""

    def __call__(self) -> dict[str, Any]:
        where = str(self.yaml_file_path)
        if isinstance(self.yaml_data, dict):
            # Top-level names match case-insensitively, as pydantic-settings reads them.
            top = {str(key).lower(): value for key, value in self.yaml_data.items()}
            unknown = _first_unknown_key(self.settings_cls, top, ())
            if unknown is not None:
                path, valid = unknown
                raise InvalidConfig(
                    f"unknown setting '{'.'.join(path)}' in {where}; "
                    + _suggestion(path, valid, ".".join, quote=True)
                )
        return _models_by_canonical_name(super().__call__(), where)


def describe_unknown(schema: type[BaseModel], path: Sequence[str]) -> str:
    """What to say about a key pydantic refused (``extra_forbidden`` at ``path``)."""
    unknown = _first_unknown_part(schema, path)
    valid = unknown[1] if unknown is not None else []
    return f"unknown setting '{'.'.join(path)}'; " + _suggestion(path, valid, ".".join, True)


@dataclass(frozen=True)
class _MappingOf:
    """A mapping from any name (a model's, say) to ``value``."""

    value: _Node


_Node = type[BaseModel] | _MappingOf | None
"""What a field holds: a section, a mapping of names, or a plain value (None)."""


def _node(annotation: Any) -> _Node:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):  # e.g. OutputFilterSettings | None
        nodes = [node for node in map(_node, get_args(annotation)) if node is not None]
        return nodes[0] if len(nodes) == 1 else None
    if origin is dict:
        return _MappingOf(_node(get_args(annotation)[1]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _child(node: _Node, part: str) -> tuple[bool, _Node]:
    """Whether ``part`` is valid under ``node``, and what it holds."""
    if isinstance(node, _MappingOf):
        return True, node.value
    if node is None or part not in node.model_fields:
        return False, None
    return True, _node(node.model_fields[part].annotation)


def _valid_names(node: _Node) -> list[str]:
    return list(node.model_fields) if isinstance(node, type) else []


def _first_unknown_part(schema: _Node, path: Sequence[str]) -> tuple[int, list[str]] | None:
    """Where ``path`` leaves the schema: the index of its first unknown part and the
    names valid there (none below a plain value); None when every part is known."""
    node = schema
    for index, part in enumerate(path):
        known, below = _child(node, part)
        if not known:
            return index, _valid_names(node)
        node = below
    return None


def _first_unknown_key(
    node: _Node, data: Mapping[Any, Any], prefix: tuple[str, ...]
) -> tuple[tuple[str, ...], list[str]] | None:
    """The first key of ``data`` (a file's mapping) that names no setting, with its path
    and the names valid beside it."""
    for key, value in data.items():
        path = (*prefix, str(key))
        known, below = _child(node, str(key))
        if not known:
            return path, _valid_names(node)
        if below is not None and isinstance(value, dict):
            unknown = _first_unknown_key(below, value, path)
            if unknown is not None:
                return unknown
    return None


def _refuse_unknown_variable(schema: type[BaseModel], name: str) -> None:
    path = name[len(PREFIX) :].lower().split("__")
    unknown = _first_unknown_part(schema, path)
    if unknown is None:
        return
    index, valid = unknown
    raise InvalidConfig(
        f"unknown setting {name} in the environment; "
        + _suggestion(path[: index + 1], valid, _variable, quote=False)
    )


def _variable(path: Sequence[str]) -> str:
    return PREFIX + "__".join(path).upper()


def _suggestion(
    path: Sequence[str], valid: list[str], spell: Callable[[Sequence[str]], str], quote: bool
) -> str:
    """``did you mean <the nearest valid key>?``, else what is valid there."""
    *parent, last = path
    mark = "'" if quote else ""
    nearest = difflib.get_close_matches(last, valid, n=1)
    if nearest:
        return f"did you mean {mark}{spell([*parent, nearest[0]])}{mark}?"
    if not valid:
        return f"{mark}{spell(parent)}{mark} takes a value, not settings under it"
    return "valid here: " + ", ".join(f"{mark}{spell([*parent, name])}{mark}" for name in valid)


def _models_by_canonical_name(data: dict[str, Any], where: str) -> dict[str, Any]:
    """One source's ``models`` keyed by canonical name, so that two sources spelling a
    model differently (``Fraud`` in the file, ``FRAUD`` in the environment) merge."""
    models = data.get("models")
    if isinstance(models, dict):
        try:
            data["models"] = by_canonical_name(models, f"models in {where}")
        except ValueError as exc:
            raise InvalidConfig(str(exc)) from None
    return data
