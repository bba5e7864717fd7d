"""The one tree of servewell's errors.

Every failure servewell reports on purpose is a :class:`ServewellError`. Each class
carries, as class attributes:

* ``code`` — a stable, machine-readable string (``"model_not_found"``);
* ``status`` — the :class:`http.HTTPStatus` the HTTP layer answers with;
* ``expose`` — whether the message may be shown to a remote caller (4xx: yes; 5xx: no,
  the caller gets only the request id and the log has the rest);
* ``exit_code`` — what the CLI exits with.

Leaves build their own message from their arguments, so the same condition always reads
the same way::

    ServewellError
    ├── NotFound (LookupError)                  404
    │   ├── ModelNotFound
    │   ├── VersionNotFound
    │   ├── AliasNotFound
    │   ├── NoPreviousVersion                        an alias with nothing to roll back to
    │   ├── RolloutNotFound                          a model with no (running) rollout
    │   └── JobNotFound                              no batch job of that id (for that key)
    ├── InvalidInput (ValueError)                400   a request's data is wrong
    │   ├── PayloadTooLarge                      413   a request body over the size limit
    │   │   └── UploadTooLarge                         a batch job's file over jobs.max_upload_bytes
    │   ├── HeadersTooLarge                      431   a request line and headers over the limit
    │   ├── UnsupportedMediaType                 415   a body in a content type not spoken
    │   ├── InvalidTrafficPolicy                       a split or shadow that cannot be served
    │   │   └── TrafficDeclaredInFile            409   a policy the settings own (source: file)
    │   └── InvalidRollout                             bad steps or bounds, a rollout in the way
    ├── InvalidReference (ValueError)            400   "name@version" does not parse
    ├── InvalidSignature (ValueError)            400   a signature file or spec is wrong
    │   └── SignatureRequired                          a format with no signature of its own
    ├── InvalidArtifact (ValueError)             422   a model file is corrupt or unreadable
    │   ├── UnsupportedFormat
    │   └── UntrustedArtifact                          a pickle or Python model without --trust
    ├── ConversionFailed                         422   a model could not be converted
    ├── InvalidData (ValueError)                 422   a training/evaluation table is unusable
    ├── InvalidConfig (ValueError)               400   a pipeline file is wrong
    ├── TrainingFailed                           422   an estimator failed to converge or diverged
    ├── GateFailed                               422   a model missed its quality gate (exit 5)
    │   └── ChallengerLost                             a retrained model did worse than its champion
    ├── Conflict                                 409
    │   ├── JobNotFinished                             a job's results before it succeeded
    │   ├── KeyNameTaken                               an API key name in use (exit 2: bad input)
    │   └── KeyAlreadyRevoked                          no active key of that name (exit 4)
    ├── MethodNotAllowed                         405   a method the route does not answer
    ├── WebSocketUnsupported                     400   a WebSocket handshake (servewell speaks HTTP)
    ├── Unauthorized                             401   no key, an unknown key or a revoked key
    ├── Forbidden                                403   a known key without the scope or model
    ├── RequestTimeout                           408   a request's headers or body too slow
    ├── RateLimited                              429   a key (or client) over its rate limit
    │   ├── LockedOut                                  a client after too many failed keys
    │   └── OverBudget                                 a key that spent its budget this period
    ├── ArtifactTampered                         500   stored bytes no longer match their sha256
    ├── ModelFailed                              500   a model raised, or broke its signature
    ├── StorageFailed                            503   the registry database is unreachable
    ├── ModelCrashed                             502   a model's own process died mid-request
    ├── DeadlineExceeded                         504   a model did not answer within the deadline
    ├── Overloaded                               503   a model's queue is full or too slow
    ├── ModelUnavailable                         503   a model's breaker is open, or it restarts
    ├── JobFailed                                500   a job waited for failed or was cancelled
    ├── Unavailable                              503   a shared dependency is down (fail_closed)
    ├── TooManyConnections                       503   a server process at its connection limit
    ├── NotReady                                 503   a model is still loading (or failed to)
    ├── ShuttingDown                             503   the server stopped before answering
    ├── OverMemoryBudget                         507   a load would pass the memory budget (exit 10)
    ├── AddressInUse                                   a server's host:port is taken (exit 8)
    ├── StartupFailed                                  a server process failed at start-up (exit 9)
    ├── UpstreamFailed                           502   a remote model's upstream failed (exit 11)
    └── MissingDependency (ImportError)          500   an optional extra is not installed

Only this module and the standard library are imported here.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any


class ServewellError(Exception):
    """Base of every error servewell raises on purpose."""

    code: str = "internal"
    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    title: str = "Internal error"
    expose: bool = False
    exit_code: int = 1

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form a client may see (only for exposed errors)."""
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.detail:
            body["detail"] = self.detail
        return body


# --- 404 ---------------------------------------------------------------------------------


class NotFound(ServewellError, LookupError):
    code = "not_found"
    status = HTTPStatus.NOT_FOUND
    title = "Not found"
    expose = True
    exit_code = 4


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"model '{name}' is not registered", model=name)


class VersionNotFound(NotFound):
    code = "version_not_found"

    def __init__(self, name: str, version: int) -> None:
        super().__init__(f"model '{name}' has no version {version}", model=name, version=version)


class AliasNotFound(NotFound):
    code = "alias_not_found"

    def __init__(self, name: str, alias: str) -> None:
        super().__init__(f"model '{name}' has no alias '{alias}'", model=name, alias=alias)


class JobNotFound(NotFound):
    """No batch job of that id, or not one the caller's key may see."""

    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job '{job_id}'", job=job_id)


class NoPreviousVersion(NotFound):
    """An alias whose history holds no earlier version to roll back to."""

    code = "no_previous_version"

    def __init__(self, name: str, alias: str, version: int | None) -> None:
        where = f"it was first set to version {version}" if version else "it has no history"
        super().__init__(
            f"alias '{alias}' of model '{name}' has no previous version to roll back to: {where}",
            model=name,
            alias=alias,
        )


class RolloutNotFound(NotFound):
    code = "rollout_not_found"

    def __init__(self, name: str, running: bool = False) -> None:
        what = "running rollout" if running else "rollout"
        super().__init__(f"model '{name}' has no {what}", model=name)


# --- 4xx: the caller's input ----------------------------------------------------------------


class InvalidInput(ServewellError, ValueError):
    """A request's data does not match what the model expects."""

    code = "invalid_input"
    status = HTTPStatus.BAD_REQUEST
    title = "Invalid input"
    expose = True
    exit_code = 2

    def __init__(self, message: str, *, input_name: str | None = None, **detail: Any) -> None:
        if input_name is not None:
            detail["input"] = input_name
        super().__init__(message, **detail)
        self.input_name = input_name


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    title = "Payload too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"request body is larger than the limit of {limit_bytes} bytes",
            limit_bytes=limit_bytes,
        )


class UploadTooLarge(PayloadTooLarge):
    """A batch job's file over ``jobs.max_upload_bytes`` (its own limit, not the body's)."""

    code = "upload_too_large"

    def __init__(self, limit_bytes: int) -> None:
        InvalidInput.__init__(
            self,
            f"the job's file is larger than the limit of {limit_bytes} bytes "
            "(jobs.max_upload_bytes)",
            limit_bytes=limit_bytes,
        )


class HeadersTooLarge(InvalidInput):
    code = "headers_too_large"
    status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    title = "Request header fields too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"the request line and headers are larger than the limit of {limit_bytes} bytes",
            limit_bytes=limit_bytes,
        )


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    title = "Unsupported media type"

    def __init__(self, got: str, expected: str) -> None:
        super().__init__(
            f"content type '{got}' is not supported here; send {expected}",
            content_type=got,
        )


class InvalidTrafficPolicy(InvalidInput):
    """A traffic split or shadow that cannot be served: weights that do not add up to
    100, an arm named twice, a shadow percentage outside 0-100, ..."""

    code = "invalid_traffic_policy"
    title = "Invalid traffic policy"


class InvalidRollout(InvalidInput):
    """A canary rollout that cannot start: steps that do not rise to 100, bounds out of
    range, a candidate that is the primary, another rollout or a manual split in the way."""

    code = "invalid_rollout"
    title = "Invalid rollout"


class TrafficDeclaredInFile(InvalidTrafficPolicy):
    """A change to a traffic policy that the settings declare with ``source: file``:
    the file has the last word, so a change in the registry would never be served."""

    code = "traffic_declared_in_file"
    status = HTTPStatus.CONFLICT
    title = "Traffic policy declared in the settings file"

    def __init__(self, name: str, where: str) -> None:
        super().__init__(
            f"the traffic policy of {name} is declared in {where} with source: file; change "
            f"it there (or set traffic.{name}.source: registry to manage it from here)",
            model=name,
        )


class InvalidReference(ServewellError, ValueError):
    code = "invalid_reference"
    status = HTTPStatus.BAD_REQUEST
    title = "Invalid model reference"
    expose = True
    exit_code = 2

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid model reference {text!r}: {reason}", reference=text)


class InvalidSignature(ServewellError, ValueError):
    code = "invalid_signature"
    status = HTTPStatus.BAD_REQUEST
    title = "Invalid signature"
    expose = True
    exit_code = 2


class SignatureRequired(InvalidSignature):
    """A model whose file says nothing of its inputs (a PyTorch module) registered bare."""

    code = "signature_required"

    def __init__(self, format: str) -> None:
        super().__init__(
            f"a '{format}' model does not describe its inputs; give its signature with "
            "--signature FILE (JSON: inputs, outputs, class_labels)",
            format=format,
        )


class InvalidArtifact(ServewellError, ValueError):
    """A model file that cannot be read as the format it claims."""

    code = "invalid_artifact"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Invalid model artifact"
    expose = True
    exit_code = 2


class UnsupportedFormat(InvalidArtifact):
    code = "unsupported_format"

    def __init__(self, what: str, supported: list[str], hint: str = "") -> None:
        super().__init__(
            f"unsupported model format {what}; supported: {', '.join(supported)}"
            + (f"; {hint}" if hint else ""),
            supported=supported,
        )


class UntrustedArtifact(InvalidArtifact):
    code = "untrusted_artifact"

    def __init__(self, path: str, what: str = "a pickle/joblib file") -> None:
        super().__init__(
            f"{path} is {what}; loading it runs arbitrary code. "
            "Register it only if you trust its source, with --trust"
        )


class ConversionFailed(ServewellError):
    code = "conversion_failed"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Conversion failed"
    expose = True


class InvalidData(ServewellError, ValueError):
    """A data file that cannot be trained or evaluated on, with what is wrong and where."""

    code = "invalid_data"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Invalid data"
    expose = True
    exit_code = 2


class InvalidConfig(ServewellError, ValueError):
    """Settings or a pipeline file with unknown keys, wrong values or references to
    missing columns."""

    code = "invalid_config"
    status = HTTPStatus.BAD_REQUEST
    title = "Invalid configuration"
    expose = True
    exit_code = 2


class TrainingFailed(ServewellError):
    """An estimator that did not converge, diverged or raised while fitting."""

    code = "training_failed"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Training failed"
    expose = True


class GateFailed(ServewellError):
    """A trained model missed one or more of its gate's thresholds; nothing was registered."""

    code = "gate_failed"
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    title = "Quality gate failed"
    expose = True
    exit_code = 5

    def __init__(self, failures: list[str]) -> None:
        super().__init__(
            f"quality gate failed, nothing registered: {'; '.join(failures)}",
            failures=failures,
        )


class ChallengerLost(GateFailed):
    """A retrained challenger did worse than its champion on the same rows (by more
    than the margin allowed); nothing was registered."""

    code = "challenger_lost"
    title = "Challenger lost"

    def __init__(self, champion: str, failures: list[str]) -> None:
        ServewellError.__init__(
            self,
            f"the challenger lost to {champion}, nothing registered: {'; '.join(failures)}",
            champion=champion,
            failures=failures,
        )


class Conflict(ServewellError):
    code = "conflict"
    status = HTTPStatus.CONFLICT
    title = "Conflict"
    expose = True


class JobNotFinished(Conflict):
    """A job's results asked for before it succeeded."""

    code = "job_not_finished"

    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(
            f"job '{job_id}' is {state}: its results are there once it has succeeded",
            job=job_id,
            state=state,
        )


class KeyNameTaken(Conflict):
    """Key names stay taken after revocation, so a name always means one key."""

    code = "key_name_taken"
    exit_code = 2

    def __init__(self, name: str) -> None:
        super().__init__(
            f"an API key named '{name}' exists already (names stay taken after "
            "revocation); choose another name",
            key=name,
        )


class KeyAlreadyRevoked(Conflict):
    code = "key_already_revoked"
    exit_code = 4  # like an unknown name: there is no active key to revoke

    def __init__(self, name: str) -> None:
        super().__init__(f"API key '{name}' was revoked already", key=name)


class MethodNotAllowed(ServewellError):
    """A route called with a method it does not answer (``allowed`` lists those it does)."""

    code = "method_not_allowed"
    status = HTTPStatus.METHOD_NOT_ALLOWED
    title = "Method not allowed"
    expose = True
    exit_code = 2

    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"method {method} is not allowed on {path}; use {' or '.join(allowed)}",
            allowed=list(allowed),
        )
        self.allowed = allowed


class WebSocketUnsupported(ServewellError):
    """A WebSocket handshake (``Upgrade: websocket``): servewell answers plain HTTP only."""

    code = "websocket_unsupported"
    status = HTTPStatus.BAD_REQUEST
    title = "WebSocket not supported"
    expose = True
    exit_code = 2

    def __init__(self) -> None:
        super().__init__(
            "servewell does not speak WebSocket: send plain HTTP requests (without "
            "'Upgrade: websocket'); /docs lists the routes"
        )


class Unauthorized(ServewellError):
    """The caller could not be identified: no key, an unknown key, a revoked key."""

    code = "unauthorized"
    status = HTTPStatus.UNAUTHORIZED
    title = "Unauthorized"
    expose = True
    exit_code = 2


class Forbidden(ServewellError):
    """The caller is known but may not do this."""

    code = "forbidden"
    status = HTTPStatus.FORBIDDEN
    title = "Forbidden"
    expose = True
    exit_code = 2


class RequestTimeout(ServewellError):
    """A client too slow to send its request: its headers (``part="headers"``) did not
    arrive in time, or its body (``part="body"``) stopped arriving."""

    code = "request_timeout"
    status = HTTPStatus.REQUEST_TIMEOUT
    title = "Request timeout"
    expose = True

    def __init__(self, part: str, timeout_s: float, min_rate: int = 0) -> None:
        if part == "headers":
            message = f"the request headers did not arrive within {timeout_s:g} s"
        elif min_rate:
            message = f"the request body arrives slower than {min_rate:,} bytes a second"
        else:
            message = f"the request body stopped arriving (nothing for {timeout_s:g} s)"
        super().__init__(message, timeout_s=timeout_s)


class RateLimited(ServewellError):
    """Too many requests from one key (or client) in its window."""

    code = "rate_limited"
    status = HTTPStatus.TOO_MANY_REQUESTS
    title = "Too many requests"
    expose = True

    def __init__(
        self,
        who: str,
        retry_after_s: float,
        headers: dict[str, str] | None = None,
        caller: str = "",
    ) -> None:
        wait = max(1, math.ceil(retry_after_s))
        super().__init__(self._describe(who, wait), retry_after_s=wait)
        self.retry_after_s = wait
        self.headers = headers or {}
        self.caller = caller
        """The key's name (or ip:<address>), for metrics; never a secret."""

    @staticmethod
    def _describe(who: str, wait_s: int) -> str:
        return f"rate limit of {who} exceeded; retry in {wait_s} s"


class LockedOut(RateLimited):
    """A client address that failed to authenticate too often: until its budget of
    failures refills, no key it sends is looked at."""

    code = "locked_out"

    def __init__(self, client: str, retry_after_s: float) -> None:
        super().__init__(f"client {client}", retry_after_s, caller=f"ip:{client}")

    @staticmethod
    def _describe(who: str, wait_s: int) -> str:
        return (
            f"too many failed authentications from {who}: no key it sends is checked "
            f"for {wait_s} s; retry then with a valid key"
        )


class OverBudget(RateLimited):
    """A key that spent its budget (``servewell keys create --budget 10/day``) this
    period: refused until the period ends (``resets_at``, ISO 8601 UTC)."""

    code = "over_budget"

    def __init__(
        self, key: str, budget: str, spent_usd: float, resets_at: str, retry_after_s: float
    ) -> None:
        self._budget, self._spent, self._resets = budget, spent_usd, resets_at
        super().__init__(f"key '{key}'", retry_after_s, caller=key)
        self.detail = {
            "key": key,
            "budget": budget,
            "spent_usd": round(spent_usd, 6),
            "resets_at": resets_at,
        }

    def _describe(self, who: str, wait_s: int) -> str:  # type: ignore[override]
        return (
            f"the budget of {who} is spent: ${self._spent:.4f} of ${self._budget} "
            f"(USD); it resets at {self._resets}"
        )


# --- 5xx: servewell's side ------------------------------------------------------------------


class ArtifactTampered(ServewellError):
    """Stored bytes no longer hash to the sha256 recorded when they were registered."""

    code = "artifact_tampered"
    title = "Artifact integrity check failed"
    exit_code = 3

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        super().__init__(
            f"artifact {uri} was modified after registration: sha256 is {actual[:12]}…, "
            f"registered as {expected[:12]}…; refusing to load it",
            uri=uri,
        )


class ModelFailed(ServewellError):
    code = "model_failed"
    title = "Model failed"


class ModelCrashed(ServewellError):
    """The process a model runs in (``isolation: process``) died while it held this
    request: a segfault, ``os._exit``, an out-of-memory kill. It is being restarted."""

    code = "model_crashed"
    status = HTTPStatus.BAD_GATEWAY
    title = "Model crashed"
    expose = True

    def __init__(self, model: str, version: int, how: str) -> None:
        super().__init__(
            f"model '{model}' version {version} crashed while answering ({how}); "
            "it is being restarted",
            model=model,
            version=version,
        )


class DeadlineExceeded(ServewellError):
    """A model did not answer within the request's deadline (``models.<name>.timeout_ms``,
    or a shorter ``Request-Timeout`` header); the work was abandoned where it could be."""

    code = "deadline_exceeded"
    status = HTTPStatus.GATEWAY_TIMEOUT
    title = "Deadline exceeded"
    expose = True

    def __init__(self, model: str, timeout_ms: float) -> None:
        super().__init__(
            f"model '{model}' did not answer within the deadline of {timeout_ms:g} ms",
            model=model,
            timeout_ms=timeout_ms,
        )
        self.model = model
        self.timeout_ms = timeout_ms


class ModelUnavailable(ServewellError):
    """A model version is not taking requests for a while: its circuit breaker is open
    after repeated failures, or its process is being restarted."""

    code = "model_unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Model unavailable"
    expose = True

    def __init__(self, model: str, version: int, why: str, retry_after_s: float = 1) -> None:
        wait = max(1, math.ceil(retry_after_s))
        super().__init__(
            f"model '{model}' version {version} is unavailable ({why}); retry in {wait} s",
            model=model,
            version=version,
        )
        self.retry_after_s = wait
        self.why = why


class StorageFailed(ServewellError):
    code = "storage_failed"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Storage unavailable"


class Overloaded(ServewellError):
    """Too many requests are already waiting for a model, or the oldest has waited past
    ``server.max_queue_wait_ms`` (``oldest_wait_ms``); the caller should retry later."""

    code = "overloaded"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Overloaded"
    expose = True

    def __init__(
        self, model: str, retry_after_s: int = 1, *, oldest_wait_ms: float | None = None
    ) -> None:
        why = (
            "has too many requests waiting"
            if oldest_wait_ms is None
            else f"is too slow to take more requests: the oldest waiting has waited "
            f"{oldest_wait_ms:.0f} ms"
        )
        super().__init__(f"model '{model}' {why}; retry in {retry_after_s} s", model=model)
        self.retry_after_s = retry_after_s


class JobFailed(ServewellError):
    """A batch job a command waited for ended failed or cancelled (exit 1)."""

    code = "job_failed"
    title = "Job failed"
    expose = True


class Unavailable(ServewellError):
    """A shared dependency (such as the rate limiter's Redis) is down and policy says
    refuse rather than guess."""

    code = "unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Service unavailable"
    expose = True

    def __init__(self, what: str, retry_after_s: int = 1) -> None:
        super().__init__(f"{what} is unavailable; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class TooManyConnections(ServewellError):
    """A server process holds as many connections as it may (``server.max_connections``)."""

    code = "too_many_connections"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Too many connections"
    expose = True

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"the server is at its connection limit ({limit}); retry in {retry_after_s} s",
            limit=limit,
        )
        self.retry_after_s = retry_after_s


class BodiesOverBudget(ServewellError):
    """The request bodies a server process is receiving already fill its budget
    (``server.max_receiving_body_bytes``): many slow uploads at once."""

    code = "bodies_over_budget"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Too many request bodies"
    expose = True

    def __init__(self, budget: int, retry_after_s: int = 1) -> None:
        super().__init__(
            f"the server is receiving as many request bodies as it may hold ({budget:,} "
            f"bytes); retry in {retry_after_s} s",
            budget=budget,
        )
        self.retry_after_s = retry_after_s


class NotReady(ServewellError):
    """A model being served has not finished loading (or failed to load: ``why`` says
    why when the failure's message may be shown, as a configuration error's may)."""

    code = "not_ready"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Not ready"
    expose = True

    def __init__(self, model: str, why: str | None = None) -> None:
        reason = f": it failed to load: {why}" if why else ""
        super().__init__(f"model '{model}' is not ready{reason}", model=model)


class ShuttingDown(ServewellError):
    """The server is shutting down and stopped waiting for this request's answer (its
    drain timeout passed); another replica, or this one restarted, may answer it."""

    code = "shutting_down"
    status = HTTPStatus.SERVICE_UNAVAILABLE
    title = "Shutting down"
    expose = True

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__(f"the server is shutting down; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class OverMemoryBudget(ServewellError):
    """Loading a version would take the server past ``server.memory_budget_mb``: the
    versions it serves keep serving, and nothing is loaded (rather than an OOM kill).
    ``needed_bytes`` is the version's estimate, ``loaded_bytes`` what the versions held
    (or, for the CLI, the served set) take, ``budget_bytes`` the budget."""

    code = "over_memory_budget"
    status = HTTPStatus.INSUFFICIENT_STORAGE
    title = "Over the memory budget"
    expose = True
    exit_code = 10

    def __init__(
        self,
        model: str,
        version: int,
        needed_bytes: int,
        loaded_bytes: int,
        budget_bytes: int,
        outcome: str = "nothing was loaded",
    ) -> None:
        super().__init__(
            f"{model}@{version} needs about {_mb(needed_bytes)} MB beside the "
            f"{_mb(loaded_bytes)} MB of the versions served: over the memory budget of "
            f"{_mb(budget_bytes)} MB (server.memory_budget_mb); {outcome}",
            model=model,
            version=version,
            needed_bytes=needed_bytes,
            loaded_bytes=loaded_bytes,
            budget_bytes=budget_bytes,
        )


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:,.1f}"


class AddressInUse(ServewellError):
    """The host and port a server should listen on are taken by another process."""

    code = "address_in_use"
    title = "Address in use"
    exit_code = 8

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"port {port} on {host} is in use: {reason}", host=host, port=port)


class StartupFailed(ServewellError):
    """A server process could not start: its app could not be built, its registry not
    opened, or (loading before serving) a model it must serve not loaded. Starting it
    again would fail the same way, so ``servewell serve`` stops with exit code 9."""

    code = "startup_failed"
    title = "Start-up failed"
    exit_code = 9

    def __init__(self, reason: str) -> None:
        super().__init__(f"the server failed to start: {reason}")
        self.reason = reason


class UpstreamFailed(ServewellError):
    """Registering a remote model, its upstream could not be reached, refused, or gave
    model metadata servewell cannot serve from (exit 11); nothing is registered."""

    code = "upstream_failed"
    status = HTTPStatus.BAD_GATEWAY
    title = "Upstream failed"
    expose = True
    exit_code = 11

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"the upstream at {url} {why}; nothing was registered", url=url)


class MissingDependency(ServewellError, ImportError):
    code = "missing_dependency"
    title = "Missing dependency"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed; install it with: pip install 'servewell[{extra}]'"
        )
