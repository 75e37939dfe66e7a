"""A polite HTTP client for image search APIs and image downloads (standard library only).

Polite means: a descriptive User-Agent with a contact, at most one request per ``interval``
seconds to each host, and retries with exponential backoff on 429, 5xx and network errors,
waiting what the server asks for in ``Retry-After`` (capped by ``max_wait``). Providers never
talk to the network themselves; they call :meth:`PoliteClient.get_json`, so every provider
gets the same behaviour and tests can point every provider at 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docsynth import __version__

RETRY_STATUS = {429, 500, 502, 503, 504}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class FetchError(Exception):
    """A request that failed for good. ``status`` is the HTTP status (0: network error);
    ``permanent`` tells a scrape whether retrying on a later run could help."""

    def __init__(self, url: str, status: int, message: str):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status
        self.permanent = status in (400, 401, 403, 404, 410, 451)


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


def user_agent(contact: str) -> str:
    """``docsynth/0.1 (contact) Python-urllib``: Wikimedia's policy asks for exactly this shape."""
    contact = contact.strip() or "contact unset: set backgrounds.contact"
    return f"docsynth/{__version__} ({contact}) Python-urllib"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class PoliteClient:
    contact: str = ""
    interval: float = 1.0  # minimum seconds between two requests to the same host
    retries: int = 5
    backoff: float = 1.0  # first wait after a failure without Retry-After; doubles each time
    max_wait: float = 120.0  # cap on any single wait, Retry-After included
    timeout: float = 30.0
    max_bytes: int = 64 * 1024 * 1024
    sleep: Callable[[float], None] = time.sleep  # injectable so tests can see the waits
    waits: list[float] = field(default_factory=list)  # every retry wait, for reports and tests
    requests: int = 0
    _last: dict[str, float] = field(default_factory=dict)

    def _throttle(self, host: str) -> None:
        last = self._last.get(host)
        if last is not None and self.interval > 0:
            delay = last + self.interval - time.monotonic()
            if delay > 0:
                self.sleep(delay)
        self._last[host] = time.monotonic()

    def _open(self, url: str, headers: dict[str, str]) -> Response:
        host = urllib.parse.urlsplit(url).hostname or ""
        # Environment proxies are for the outside world; a loopback server is reached directly.
        handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK else []
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, headers={"User-Agent": user_agent(self.contact), **headers})
        self._throttle(host)
        self.requests += 1
        with opener.open(request, timeout=self.timeout) as reply:
            body = reply.read(self.max_bytes + 1)
            if len(body) > self.max_bytes:
                raise FetchError(url, 413, f"larger than {self.max_bytes} bytes")
            return Response(reply.geturl(), reply.status, {k.lower(): v for k, v in reply.headers.items()}, body)

    def get(self, url: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
            retry_if: Callable[[Response], float | None] | None = None) -> Response:
        """GET with retries. ``retry_if(response)`` may ask for a retry of a 200 reply by
        returning the seconds to wait (Commons answers ``maxlag`` errors with HTTP 200)."""
        if params:
            url = url + ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        attempt = 0
        while True:
            wait: float | None = None
            try:
                response = self._open(url, headers or {})
                wait = retry_if(response) if retry_if else None
                if wait is None:
                    return response
                failure = FetchError(url, response.status, "server asked to retry later")
            except urllib.error.HTTPError as exc:
                failure = FetchError(url, exc.code, f"HTTP {exc.code} {exc.reason}")
                if exc.code not in RETRY_STATUS:
                    raise failure from None
                wait = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                failure = FetchError(url, 0, f"network error ({reason})")
            if attempt >= self.retries:
                raise failure
            if wait is None:  # exponential backoff with jitter, so clients do not retry in step
                wait = self.backoff * (2 ** attempt) * (0.5 + random.random() / 2)
            wait = min(wait, self.max_wait)
            self.waits.append(wait)
            self.sleep(wait)
            attempt += 1

    def get_json(self, url: str, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None,
                 retry_if: Callable[[Any, Response], float | None] | None = None) -> Any:
        """GET and decode JSON. ``retry_if(data, response)`` may ask for a retry (seconds)."""

        def check(response: Response) -> float | None:
            return retry_if(_decode_json(response), response) if retry_if else None

        response = self.get(url, params, {"Accept": "application/json", **(headers or {})}, check)
        return _decode_json(response)


def _decode_json(response: Response) -> Any:
    try:
        return json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FetchError(response.url, response.status, "reply is not JSON") from None
