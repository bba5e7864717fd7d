"""What ``servewell serve`` checks before it starts uvicorn, so that a server that could
never serve fails at once with one line and its own exit code (not later, in a log)."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

from servewell.cli.output import errors
from servewell.core.address import is_loopback
from servewell.core.ref import ModelRef
from servewell.errors import AddressInUse, InvalidInput, NotFound

if TYPE_CHECKING:
    from servewell.registry import SqlRegistry
    from servewell.settings import Settings


def check_models(settings: Settings, refs: list[str], allow_empty: bool) -> None:
    """Every reference resolves in the registry; with none given, something is registered
    (unless ``allow_empty``): a typo would leave the server unready for ever."""
    from servewell.bootstrap import build_services

    services = build_services(settings)
    try:
        registered = sorted(summary.name for summary in services.registry.list_models())
        if not refs and not registered and not allow_empty:
            raise NotFound(
                "nothing to serve: no model is registered and none is named with --models; "
                "register one first, or pass --allow-empty to serve nothing"
            )
        for text in refs:
            _check_resolves(services.registry, text, registered)
        for line in unmatched_model_settings(settings, registered):
            errors.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    finally:
        services.close()


def unmatched_model_settings(settings: Settings, registered: list[str]) -> list[str]:
    """A line for each ``models.<name>`` section that names no registered model: a typo
    there would leave its settings applying to nothing, silently."""
    from difflib import get_close_matches

    from servewell.settings.models import canonical_name

    known = {canonical_name(name): name for name in registered}
    lines = []
    for name in settings.models:
        if canonical_name(name) in known:
            continue
        nearest = get_close_matches(canonical_name(name), list(known), n=1)
        hint = f" (did you mean '{known[nearest[0]]}'?)" if nearest else ""
        lines.append(
            f"the settings' models.{name} names no registered model{hint}; "
            "its settings apply to nothing"
        )
    return lines


def _check_resolves(registry: SqlRegistry, text: str, registered: list[str]) -> None:
    try:
        registry.resolve(ModelRef.parse(text))
    except NotFound as exc:
        known = ", ".join(f"'{name}'" for name in registered) or "none yet"
        raise NotFound(
            f"cannot serve {text!r}: {exc.message}; registered models: {known}", reference=text
        ) from None


def check_port_free(host: str, port: int) -> None:
    """Bind host:port as uvicorn will (SO_REUSEADDR, every address the host names), then
    let go: a taken port is refused here, before any model loads."""
    if port == 0:
        return  # any free port
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidInput(f"cannot listen on {host}: {exc.strerror}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise AddressInUse(host, port, exc.strerror or str(exc)) from None
                raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def check_auth_off(host: str, i_know: bool, source: str) -> None:
    """Without keys anyone who reaches the port may call every model: fine on loopback,
    refused elsewhere unless the user says twice that they mean it — whether auth was
    turned off by ``--no-auth`` or by the settings."""
    if not is_loopback(host) and not i_know:
        raise InvalidInput(
            f"{source} on {host} would open every model to anyone who can reach it; "
            "add --i-know if that is really what you want"
        )
