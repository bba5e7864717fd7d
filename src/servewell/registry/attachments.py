"""A version's JSON attachments (the training reference profile), read from the artifact
store with their bytes checked: below the training code, so a server reads a version's
profile without importing it."""

from __future__ import annotations

import json
from typing import Any

import orjson

from servewell.errors import InvalidData
from servewell.registry.access import RegistryAccess
from servewell.registry.records import ModelVersion

#: Attachment name of the reference profile the training pipeline stores.
PROFILE_ROLE = "profile.json"


def read_attachment_json(access: RegistryAccess, version: ModelVersion, role: str) -> Any:
    """A JSON attachment (the profile), its bytes checked on the way."""
    artifact = version.artifact(role)
    data = access.artifacts.fetch(artifact.uri, artifact.sha256).read_bytes()
    try:
        return orjson.loads(data)  # a profile is megabytes: orjson reads it 4x faster
    except orjson.JSONDecodeError:
        pass  # NaN or Infinity, which orjson refuses and json.dumps may have written
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidData(f"{version.name}@{version.version}'s {role} is not JSON") from exc
