"""An httpx transport on aiohttp's connection pool, for the upstream client.

httpx's own pool (httpcore) re-checks every connection for every queued request
(``_assign_requests_to_connections``: each check a socket-readability probe through
anyio), so its cost grows with connections times waiting requests: with 64 requests
in flight to a 50 ms upstream it managed ~70 requests/s here where aiohttp's pool did
~900 (encode/httpx#3215). The upstream client keeps httpx's API (requests, responses,
``aiter_lines``, timeouts in ``request.extensions``) and sends through this transport;
aiohttp's errors are translated to httpx's at this edge, so callers see only httpx's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import aiohttp


@contextmanager
def map_aiohttp_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp's exceptions (and asyncio's timeout inside it) as httpx's."""
    import aiohttp

    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except TimeoutError as exc:  # aiohttp's own (an outer asyncio.timeout cancels instead)
        raise httpx.PoolTimeout("no connection free in time", request=request) from exc


class ResponseTooLarge(httpx.DecodingError):
    """The upstream's body went past the transport's ``max_response_bytes``."""


class AiohttpStream(httpx.AsyncByteStream):
    def __init__(
        self, response: aiohttp.ClientResponse, request: httpx.Request, limit: int | None = None
    ) -> None:
        self._response = response
        self._request = request
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size, limit = 0, self._limit
        with map_aiohttp_errors(self._request):
            async for chunk in self._response.content.iter_any():
                size += len(chunk)
                if limit is not None and size > limit:
                    raise ResponseTooLarge(f"more than {limit} bytes", request=self._request)
                yield chunk

    async def aclose(self) -> None:
        # Read to its end, the connection goes back to the pool; else it is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests through one ``aiohttp.ClientSession`` of at most
    ``max_connections`` connections (made by :meth:`open` at start, else on first use;
    on the running loop); a body read past ``max_response_bytes`` raises
    :class:`ResponseTooLarge`."""

    def __init__(self, max_connections: int, max_response_bytes: int | None = None) -> None:
        self.max_connections = max_connections
        self.max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> None:
        """Import aiohttp and make the session now (on the running loop), so that the
        first request does not pay for it (0.4-0.9 s here, in bench/llm.py's profile)."""
        self._open()

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=0, use_dns_cache=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, trust_env=False
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        timeout: dict[str, Any] = request.extensions.get("timeout", {})
        limits = aiohttp.ClientTimeout(
            total=None,
            connect=timeout.get("pool"),
            sock_connect=timeout.get("connect"),
            sock_read=timeout.get("read"),
        )
        body = await request.aread()
        with map_aiohttp_errors(request):
            response = await self._open().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=limits,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=AiohttpStream(response, request, self.max_response_bytes),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
