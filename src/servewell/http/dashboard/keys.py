"""The Keys page (admin only): every key (never a secret), creating one (its secret
shown once, in the answer to the form, never again) and revoking one, through the
registry's ``ApiKeyStore``, as ``servewell keys`` does."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from servewell.core.apikey import SCOPES
from servewell.errors import Forbidden, InvalidInput, ServewellError
from servewell.http.dashboard.access import Admin, Principal, Viewer, running
from servewell.http.dashboard.pages import NavItem, render
from servewell.http.guard import DASHBOARD_PREFIX
from servewell.registry.keys import ApiKeyStore, check_models_exist

router = APIRouter()
NAV = NavItem("Keys", "/keys", 50, admin_only=True)


def admin(principal: Viewer) -> Principal:
    """The Keys page is for admins alone (with authentication off, for nobody)."""
    if not principal.is_admin:
        raise Forbidden(f"the Keys page needs the 'admin' scope, which '{principal.name}' lacks")
    return principal


KeysAdmin = Annotated[Principal, Depends(admin)]


@router.get("/keys")
async def keys_page(request: Request, principal: KeysAdmin, revoked: str | None = None) -> Response:
    return await _page(request, principal, revoked=revoked)


@router.post("/keys")
async def create_key(
    request: Request,
    principal: Admin,
    name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    models: Annotated[str, Form()] = "",
    rate: Annotated[str, Form()] = "",
    budget: Annotated[str, Form()] = "",
    tpm: Annotated[str, Form()] = "",
    allow_unknown_models: Annotated[bool, Form()] = False,
) -> Response:
    """Create a key and answer the page with its secret, this once."""
    store = ApiKeyStore(running(request).services.registry)
    model_names = tuple(part.strip() for part in models.split(",") if part.strip()) or None
    try:
        if model_names and not allow_unknown_models:
            await asyncio.to_thread(check_models_exist, store.registry, model_names)
        key, token = await asyncio.to_thread(
            store.create,
            name.strip(),
            tuple(scopes or ()),
            model_names,
            rate.strip() or None,
            budget.strip() or None,
            _tokens_per_minute(tpm),
        )
    except ServewellError as exc:  # refused as the CLI refuses it; nothing was created
        return await _page(request, principal, status=int(exc.status), error=exc.message)
    return await _page(request, principal, created=key.name, secret=token)


def _tokens_per_minute(text: str) -> int | None:
    """The form's tokens per minute (empty: none), or InvalidInput naming the field."""
    if not text.strip():
        return None
    try:
        return int(text.strip().replace(",", ""))
    except ValueError:
        raise InvalidInput(f"tokens per minute {text.strip()!r} is not a whole number") from None


@router.post("/keys/{name}/revoke")
async def revoke_key(request: Request, name: str, _: Admin) -> Response:
    store = ApiKeyStore(running(request).services.registry)
    await asyncio.to_thread(store.revoke, name)
    return RedirectResponse(f"{DASHBOARD_PREFIX}/keys?revoked={name}", status_code=303)


async def _page(
    request: Request, principal: Principal, *, status: int = 200, **context: str | None
) -> Response:
    keys = await asyncio.to_thread(ApiKeyStore(running(request).services.registry).list)
    return render(
        request, "keys.html", principal, status=status, keys=keys, scopes=SCOPES, **context
    )
