"""Where a load test learns what the model takes: the server's V2 metadata (its
signature's tensors, which versions serve), and, when this machine can read the
registry the server serves from, the version's full signature and reference profile.

Decided so: the profile holds the training rows' sample, so the bodies are realistic
rows; the server does not publish it (it is training data), so without the registry
the bodies are random valid rows drawn from the signature alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from servewell.client import to_error
from servewell.core.signature import Signature
from servewell.errors import InvalidInput, ServewellError
from servewell.loadtest.client import Target
from servewell.registry.access import RegistryAccess
from servewell.registry.attachments import PROFILE_ROLE, read_attachment_json

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """The signature to make bodies from, the profile when found, and where they came from."""

    signature: Signature
    profile: dict[str, Any] | None
    served_versions: list[int]
    origin: str
    """``registry`` (signature and profile of the version) or ``metadata`` (signature only)."""


def fetch_metadata(
    target: Target, model: str, version: int | None, api_key: str | None, timeout_s: float
) -> dict[str, Any]:
    """``GET /v2/models/{model}[/versions/N]``, waiting ``timeout_s`` at most (the run's
    ``--timeout``); the server's own error when it refuses."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(target.url + path, headers=headers, timeout=timeout_s, verify=True)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"cannot reach {target.url}: {exc}") from None
    if not response.is_success:
        raise to_error(response)
    found: dict[str, Any] = response.json()
    return found


def model_source(
    metadata: dict[str, Any], model: str, version: int | None, access: RegistryAccess | None
) -> ModelSource:
    """The registry's signature and profile of the version that serves (``version``, or
    the first the metadata lists) when ``access`` has it; else the metadata's tensors."""
    served = [int(v) for v in metadata.get("versions") or [] if str(v).isdigit()]
    number = version or (served[0] if served else None)
    if access is not None and number is not None:
        try:
            found = access.registry.get_version(model, number)
            profile = (
                read_attachment_json(access, found, PROFILE_ROLE)
                if found.has_artifact(PROFILE_ROLE)
                else None
            )
            return ModelSource(found.signature, profile, served, "registry")
        except ServewellError as exc:
            logger.info("not reading %s@%s from the registry: %s", model, number, exc)
    signature = Signature.from_dict(
        {"inputs": metadata.get("inputs") or [], "outputs": metadata.get("outputs") or []}
    )
    return ModelSource(signature, None, served, "metadata")


def probe_version(
    target: Target, path: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> int | None:
    """The version that answers one valid request before the load (the REST answer's
    ``version``, V2's ``model_version``), so the result is recorded against it even when
    answers carry no ``X-Servewell-Version`` (that header names routed answers only);
    ``timeout_s`` at most (the run's ``--timeout``)."""
    try:
        response = httpx.post(target.url + path, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"cannot reach {target.url}: {exc}") from None
    if not response.is_success:
        raise to_error(response)
    length = int(response.headers.get("inference-header-content-length", len(response.content)))
    try:
        answer = json.loads(response.content[:length])
    except ValueError:
        return None
    number = (
        str(answer.get("version", answer.get("model_version", "")))
        if isinstance(answer, dict)
        else ""
    )
    return int(number) if number.isdigit() else None
