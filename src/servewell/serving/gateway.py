"""The one inference path. Every entry point (REST, V2 JSON and binary, the fast lane
inside the HTTP protocol) hands a :class:`Call` to the :class:`Gateway`, which takes the
same steps in the same order for all of them:

request id → guard (key, scope, model, rate) → resolve (name, pinned version, else
the model's traffic route) →
response cache → decode → validate → predict → output filters → encode → record
(metrics, access line, prediction log).

What differs between protocols is injected as a :class:`Codec` (``http.v2``,
``http.rest``, ``http.chat`` implement it): decoding a body, encoding an answer and
answering an error (V2 keeps the protocol's ``{"error": ...}``; REST adds ``code`` and
``detail``; chat answers OpenAI's shape). The model steps (resolve, validate, predict,
filters) are :class:`~servewell.serving.predictor.Predictor`'s,
callable without any protocol (the CLI's ``predict``, batch jobs). A model's answer to
a path naming no version may then be copied to its shadow (``serving.shadow``).

Two entry points: :meth:`Gateway.try_now` answers at once when every step can without
awaiting (a response-cache hit with the in-process cache and rate limiter, or the guard's
refusal of one), and returns None *before anything is counted or changed* otherwise;
:meth:`Gateway.handle` answers everything.

Once the model is resolved, a request gets its :class:`~servewell.core.deadline.Deadline`:
the model's ``timeout_ms``, or the ``Request-Timeout`` header's milliseconds when fewer;
past it the model step raises DeadlineExceeded (504). A client that goes away while its
request waits for the model (the HTTP protocol calls :meth:`Call.client_left`) has it
cancelled there, so it leaves the model's queue; it is recorded as 499.

A request its codec decodes as streamed (``Decoded.stream``: chat completions with
``stream: true``) is answered with a stream (``serving.text_stream``) once its first
piece is there: until then a failure has the model's fallback chain, after it the
stream is the answer (and is neither cached nor logged as a prediction).
"""

from __future__ import annotations

import asyncio
import time

from servewell.core.codec import HEADER_LENGTH
from servewell.core.deadline import deadline_for, requested_deadline
from servewell.core.ref import ModelRef, version_in_path
from servewell.errors import ServewellError
from servewell.observability import RequestRecord, ServingMetrics, bind_request, unbind_request
from servewell.observability.metrics import CLIENT_CLOSED
from servewell.serving.admission import API_KEY, AUTHORIZATION, Admission, Headers
from servewell.serving.call import Call, ClientDisconnected
from servewell.serving.deployment import Deployment
from servewell.serving.fallback import STALE, Failed, Fallbacks, is_fallback
from servewell.serving.prediction_log import PredictionLog
from servewell.serving.prediction_rows import Answer
from servewell.serving.predictor import Predictor
from servewell.serving.recorder import Recorder, request_id_from
from servewell.serving.reply import Reply, entry_message, header_lines, pack_reply, unpack_reply
from servewell.serving.response_cache import ResponseCacheLayer
from servewell.serving.routing import Router
from servewell.serving.text_stream import TextStreams

REQUEST_ID = b"x-request-id"
CONTENT_TYPE = b"content-type"
CACHE_CONTROL = b"cache-control"
REQUEST_TIMEOUT = b"request-timeout"
HIT = (b"x-cache", b"hit")
MISS = (b"x-cache", b"miss")
HIT_LINE = header_lines([HIT])

#: What :meth:`Gateway.try_now` answers: the status, then everything after the status
#: line and the server's own headers (date, server), as HTTP/1.1 writes it.
NowAnswer = tuple[int, tuple[bytes | memoryview, ...]]


class Gateway:
    def __init__(
        self,
        predictor: Predictor,
        admission: Admission,
        cache: ResponseCacheLayer | None,
        recorder: Recorder,
        fallbacks: Fallbacks | None = None,
        router: Router | None = None,
        predictions: PredictionLog | None = None,
        streams: TextStreams | None = None,
    ) -> None:
        self.predictor = predictor
        self.admission = admission
        self.cache = cache
        self.recorder = recorder
        self.metrics: ServingMetrics = recorder.metrics
        self.fallbacks = fallbacks or Fallbacks({}, predictor, cache, self.metrics)
        """Who answers when a model does not (``serving.fallback``)."""
        self.router = router
        """The traffic routes (``serving.routing``); None: every model by its default."""
        self.predictions = predictions
        """Where served predictions are logged (None: nowhere)."""
        self.streams = streams
        """Opens streamed answers (``serving.text_stream``; None: nothing streams)."""
        self.shadows = router.shadows if router is not None else None
        """Where the model's answers are copied to a shadow (``serving.shadow``)."""
        self.answers_now = cache is not None and cache.sync is not None and admission.decides_now
        """Whether :meth:`try_now` can ever answer (an in-process cache and limiter)."""
        self.answered_now = 0
        """Requests :meth:`try_now` answered (hits and refusals), for tests and curiosity."""

    # --- without awaiting --------------------------------------------------------------------

    def try_now(self, call: Call) -> NowAnswer | None:
        """The answer to a cache hit (or the guard's refusal of one), when no step has to
        wait; None, with nothing counted or changed, when :meth:`handle` must answer."""
        started = time.perf_counter()
        layer = self.cache
        if not self.answers_now or layer is None or layer.sync is None:
            return None
        headers = call.headers
        if CACHE_CONTROL in headers or REQUEST_TIMEOUT in headers:
            return None  # handle() refuses a malformed Request-Timeout, hit or miss
        if call.path in self.admission.open_paths:
            return None
        router = self.router
        if router is not None and call.version is None and call.model in router.routes:
            return None  # routed: the answer depends on the arm (and counts per arm)
        try:
            deployment = self._resolve(call)
        except ServewellError:
            return None
        key = self._key(layer, call, deployment, call.body)
        entry = None if key is None else layer.sync.peek(key)
        message = None if entry is None else entry_message(entry)
        if key is None or message is None:
            return None
        request_id = call.request_id = request_id_from(call.headers.get(REQUEST_ID))
        record = RequestRecord(request_id, "POST", call.path, protocol=call.codec.protocol)
        token = bind_request(record)
        try:
            parts = self._hit_or_refusal(call, layer, deployment, record, key, message)
        finally:
            unbind_request(token)
        elapsed_s = time.perf_counter() - started
        self.recorder.finish(record, elapsed_s, call.client)
        if record.status == 200 and self.predictions is not None:
            self.predictions.add(record, elapsed_s, None)  # a hit: logged as cached
        self.answered_now += 1
        return record.status, (b"x-request-id: " + request_id.encode() + b"\r\n", *parts)

    def _hit_or_refusal(
        self,
        call: Call,
        layer: ResponseCacheLayer,
        deployment: Deployment,
        record: RequestRecord,
        key: str,
        message: memoryview,
    ) -> tuple[bytes | memoryview, ...]:
        """The rest of a hit (its headers and message), or the guard's refusal. Model and
        version are recorded once admitted, as :meth:`handle` does."""
        admission = self.admission
        address = call.client or "unknown"
        limit_lines = b""
        if admission.admits_everyone:
            record.caller = f"ip:{address}"
        else:
            headers = call.headers
            try:
                credentials = (headers.get(AUTHORIZATION), headers.get(API_KEY))
                admitted = admission.now(credentials, address, "predict", call.model)
            except ServewellError as exc:
                reply = call.codec.refusal(exc)
                record.status = reply.status
                return (reply.message(),)
            record.caller = admitted.caller
            if admitted.headers:
                limit_lines = header_lines(admitted.headers)
        record.model, record.version = deployment.name, str(deployment.number)
        assert layer.sync is not None
        layer.sync.count_hit(key)
        self.metrics.count_cache(record.model, "hit")  # a hit never evicts
        record.cache = "hit"
        record.status = 200
        return HIT_LINE, limit_lines, message

    # --- the whole path ----------------------------------------------------------------------

    async def handle(self, call: Call) -> Reply | None:
        """The answer to ``call``, errors included; None when the client went away
        before its body arrived (recorded as 499)."""
        started = time.perf_counter()
        request_id = call.request_id or request_id_from(call.headers.get(REQUEST_ID))
        record = RequestRecord(request_id, "POST", call.path, protocol=call.codec.protocol)
        token = bind_request(record)
        recorder = self.recorder
        recorder.enter()
        limits: Headers = []
        reply: Reply | None
        try:
            reply = await self._answer(call, record, limits)
        except ClientDisconnected:
            reply = None
            record.status = CLIENT_CLOSED
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not call.gone or task is None or task.uncancel() > 0:
                raise  # not (only) client_left's: it only stops the waiting
            reply = None
            record.status = CLIENT_CLOSED
        except Exception as exc:
            reply = call.codec.refusal(exc)
        try:
            if reply is not None:
                reply.headers.extend(limits)
                reply.headers.append((REQUEST_ID, request_id.encode()))
                if call.arm is not None:
                    reply.headers.extend(call.arm.headers)
                record.status = reply.status
        finally:
            if call.served is not None:
                call.served.in_flight -= 1
            recorder.leave()
            elapsed_s = time.perf_counter() - started
            recorder.finish(record, elapsed_s, call.client)
            if call.arm is not None:
                self.metrics.observe_arm(
                    record.model, call.arm.name, record.version, record.status, elapsed_s
                )
            self._log_prediction(call, record, elapsed_s)
            unbind_request(token)
        return reply

    def _log_prediction(self, call: Call, record: RequestRecord, elapsed_s: float) -> None:
        """The model's answers and response-cache hits go to the prediction log; errors,
        refusals and fallback answers do not (the metrics and access line have them)."""
        log = self.predictions
        answered = call.answer is not None or record.cache == "hit"
        if log is not None and record.status == 200 and answered:
            arm = call.arm
            log.add(record, elapsed_s, call.answer, None if arm is None else arm.name)

    async def _answer(self, call: Call, record: RequestRecord, limits: Headers) -> Reply:
        """Guard, read the body, resolve, then the response cache around the model."""
        headers = call.headers
        limits.extend(
            await self.admission.admit(
                record,
                call.path,
                (headers.get(AUTHORIZATION), headers.get(API_KEY)),
                call.client or "unknown",
                "predict",
                call.model or None,  # none yet: a chat body that names none is a 400
            )
        )
        body = call.body if call.read_body is None else await call.read_body()
        deployment = call.served = self._resolve(call)
        deployment.in_flight += 1
        record.model, record.version = deployment.name, str(deployment.number)
        call.requested = requested_deadline(headers.get(REQUEST_TIMEOUT))
        call.deadline = deadline_for(call.requested, deployment.timeout_ms)
        layer = self.cache
        key = None
        if layer is not None:
            known = call.cache_key
            key = (
                known  # computed by try_now, for this very request
                if known is not None and layer.names(known, deployment.version)
                else self._key(layer, call, deployment, body)
            )
        if layer is None or key is None:
            return await self._predict(call, deployment, body)
        cache_control = call.headers.get(CACHE_CONTROL)
        use_cache = cache_control is None or b"no-cache" not in cache_control.lower()
        if use_cache:
            entry = await layer.get(key)
            cached = unpack_reply(entry) if entry is not None else None
            if cached is not None:
                self._count_cache(layer, record, "hit")
                cached.headers.append(HIT)
                return cached
        reply = await self._predict(call, deployment, body)
        if not is_fallback(reply):  # never the model's answer for later requests
            await layer.store(deployment.name, key, pack_reply(reply))
        elif STALE in reply.headers:  # the cache fallback's: X-Cache says so already
            self._count_cache(layer, record, "stale")
            return reply
        self._count_cache(layer, record, "miss" if use_cache else "bypass")
        reply.headers.append(MISS)
        return reply

    def _resolve(self, call: Call) -> Deployment:
        """The deployment the call names (aliases are resolved when models load): the
        path's version, else the arm of the model's traffic route, else its default."""
        if call.version is not None:
            return self.predictor.pool.get(call.model, version_in_path(call.model, call.version))
        router = self.router
        route = None if router is None else router.routes.get(call.model)
        if route is None:
            return self.predictor.pool.get(call.model)
        arm = call.arm = route.pick(call.headers)
        return arm.deployment

    @staticmethod
    def _key(
        layer: ResponseCacheLayer, call: Call, deployment: Deployment, body: bytes
    ) -> str | None:
        headers = call.headers
        view = call.codec.cache_view(body, headers)
        key = (
            None
            if view is None
            else layer.key_for(
                deployment.version,
                call.codec.protocol,
                headers.get(CONTENT_TYPE),
                headers.get(HEADER_LENGTH),
                view,
            )
        )
        call.cache_key = key
        return key

    async def _predict(self, call: Call, deployment: Deployment, body: bytes) -> Reply:
        """Decode, validate, predict, filter, encode: the answer the cache stores (or,
        when the model does not answer, its fallback chain's, which it does not)."""
        ref = ModelRef(deployment.name, version=deployment.number)
        codec = call.codec
        decoded = codec.decode(ref, deployment, body, call.headers)
        if call.gone:
            raise ClientDisconnected  # nobody to compute for
        call.waiting = asyncio.current_task()
        try:
            if decoded.stream is not None and self.streams is not None:
                opened = await self.streams.open(decoded.request, deployment, call.deadline)
                return decoded.stream(opened, deployment)  # not logged, never cached
            response = await self.predictor.infer(
                decoded.request, deployment, deadline=call.deadline
            )
        except Exception as exc:
            encode = lambda answer: codec.encode(decoded, answer, deployment)  # noqa: E731
            failed = Failed(
                deployment, decoded.request, encode, call.headers, call.cache_key, call.requested
            )
            return await self.fallbacks.recover(exc, failed)
        finally:
            call.waiting = None
        call.answer = Answer(deployment.signature, decoded.request, response)
        reply = codec.encode(decoded, response, deployment)
        if self.shadows is not None and call.version is None:  # a pinned version: never
            self.shadows.offer(deployment.name, decoded.request, response)
        return reply

    def _count_cache(self, layer: ResponseCacheLayer, record: RequestRecord, outcome: str) -> None:
        """A response cache outcome in the metrics and the access line."""
        self.metrics.count_cache(record.model, outcome)
        record.cache = outcome
        evictions = layer.new_evictions()
        if evictions:
            self.metrics.cache_evictions.inc(evictions)
