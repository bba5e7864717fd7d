"""Registering a remote model: its spec checked, and its signature: a ``v2`` upstream's
model metadata (fetched now), or the chat signature with the request's parameters and
the answer's usage (``core.chat_signature.openai_signature``) for an ``openai`` one.

Only the spec is stored (normalized: comments dropped, so nothing but its fields reaches
the registry); never the credential, which is read at registration only to fetch the
metadata, and at load time by the server.
"""

from __future__ import annotations

import os
from typing import Any

from servewell.core.chat_signature import openai_signature
from servewell.core.remote_spec import RemoteSpec
from servewell.core.signature import Signature
from servewell.errors import InvalidConfig, InvalidSignature, UpstreamFailed

MAX_METADATA_BYTES = 1024 * 1024


def remote_signature(spec: RemoteSpec) -> Signature:
    """The signature a remote model serves with (network I/O for a ``v2`` upstream)."""
    if spec.kind == "openai":
        return openai_signature()
    return signature_from_metadata(spec, fetch_v2_metadata(spec))


def fetch_v2_metadata(spec: RemoteSpec) -> Any:
    """``GET {url}/v2/models/{model}[/versions/{v}]``'s JSON; UpstreamFailed saying why
    not (never quoting the upstream's body)."""
    import httpx

    url = f"{spec.base_url}{spec.v2_model_path}"
    timeout = httpx.Timeout(spec.timeouts.read_s, connect=spec.timeouts.connect_s)
    try:
        with (
            httpx.Client(timeout=timeout, trust_env=False) as client,
            client.stream("GET", url, headers=_credential_header(spec)) as response,
        ):
            if response.status_code != 200:
                raise UpstreamFailed(
                    spec.base_url,
                    f"answered {response.status_code} for the metadata of model "
                    f"'{spec.model}' (GET {spec.v2_model_path})",
                )
            chunks: list[bytes] = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if sum(map(len, chunks)) > MAX_METADATA_BYTES:
                    raise UpstreamFailed(spec.base_url, "sent model metadata over 1 MiB")
    except httpx.TimeoutException:
        raise UpstreamFailed(spec.base_url, "did not answer in time") from None
    except httpx.TransportError as exc:
        raise UpstreamFailed(spec.base_url, f"cannot be reached ({type(exc).__name__})") from None
    try:
        return httpx.Response(200, content=b"".join(chunks)).json()
    except ValueError:
        raise UpstreamFailed(spec.base_url, "sent model metadata that is not JSON") from None


def signature_from_metadata(spec: RemoteSpec, metadata: Any) -> Signature:
    """A signature from V2 model metadata (inputs, outputs: name, datatype, shape)."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("inputs"), list):
        raise UpstreamFailed(spec.base_url, f"sent metadata of '{spec.model}' without inputs")
    try:
        return Signature.from_dict(
            {
                "inputs": [_tensor(item) for item in metadata["inputs"]],
                "outputs": [_tensor(item) for item in metadata.get("outputs") or []],
            }
        )
    except InvalidSignature as exc:
        raise UpstreamFailed(
            spec.base_url,
            f"sent metadata of '{spec.model}' that servewell cannot serve "
            f"({exc.message.removeprefix('invalid signature: ')})",
        ) from None


def _tensor(item: Any) -> Any:
    """A metadata tensor's name, datatype and shape (what else it says is not needed)."""
    if not isinstance(item, dict):
        return item
    return {key: item[key] for key in ("name", "datatype", "shape") if key in item}


def _credential_header(spec: RemoteSpec) -> dict[str, str]:
    env = spec.credential_env
    if env is None:
        return {}
    value = os.environ.get(env, "")
    if not value:
        raise InvalidConfig(
            f"environment variable {env} (the upstream's credential, named by "
            "credential_env) is not set: the upstream's metadata cannot be fetched"
        )
    return {"Authorization": f"Bearer {value}"}
