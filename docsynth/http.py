"""docsynth's one HTTP client (standard library only): search APIs, images and dataset files.

Polite means: a descriptive User-Agent with a contact, at most one request per ``interval``
seconds to each host, and retries with exponential backoff on 429, 5xx and network errors,
waiting what the server asks for in ``Retry-After`` (capped by ``max_wait``). Large files go
to disk with :meth:`PoliteClient.download_to`, which resumes a partial file with an HTTP
``Range`` request, also on each retry after a dropped connection. A request that fails for
good raises :class:`FetchError`, whose message is one line: the URL and what went wrong.
Background providers never talk to the network themselves; they call
:meth:`PoliteClient.get_json`, so every provider gets the same behaviour and tests can point
every provider at 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docsynth import __version__
from docsynth.errors import DocsynthError
from docsynth.progress import Progress

RETRY_STATUS = {429, 500, 502, 503, 504}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CHUNK = 1 << 16


class FetchError(Exception):
    """A request that failed for good. ``status`` is the HTTP status (0: network error);
    ``permanent`` tells a scrape whether retrying on a later run could help."""

    def __init__(self, url: str, status: int, message: str):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.status = status
        self.reason = message
        self.permanent = status in (400, 401, 403, 404, 410, 451)
        self.retry_after: float | None = None  # seconds the server asked to wait (Retry-After)


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
    jitter: bool = True  # up to half of each backoff wait drawn at random, so clients do not retry in step
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

    def _request(self, url: str, headers: dict[str, str]) -> Any:
        """Send one GET (after the host's interval) and return the open reply."""
        host = urllib.parse.urlsplit(url).hostname or ""
        # Environment proxies are for the outside world; a loopback server is reached directly.
        handlers = [urllib.request.ProxyHandler({})] if host in LOOPBACK else []
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(url, headers={"User-Agent": user_agent(self.contact), **headers})
        self._throttle(host)
        self.requests += 1
        return opener.open(request, timeout=self.timeout)

    def _wait(self, attempt: int, wait: float | None) -> None:
        """Sleep before retry ``attempt`` + 1: what the server asked for, else the backoff."""
        if wait is None:
            wait = self.backoff * (2 ** attempt) * ((0.5 + random.random() / 2) if self.jitter else 1.0)
        wait = min(wait, self.max_wait)
        self.waits.append(wait)
        self.sleep(wait)

    def _open(self, url: str, headers: dict[str, str]) -> Response:
        with self._request(url, headers) as reply:
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
            self._wait(attempt, wait)
            attempt += 1

    def download_to(self, url: str, part: Path, size: int | None = None,
                    progress: Progress | None = None) -> None:
        """Fetch ``url`` into ``part``, appending to what an earlier attempt left there (a
        ``Range`` request; a server that ignores it sends the whole file, written afresh).
        Dropped connections, short bodies, 429 and 5xx are retried, each retry resuming; ``size``
        (when known) is the whole file's. Raises FetchError when it fails for good, and
        DocsynthError when ``part`` cannot be written (retrying cannot help)."""
        attempt = 0
        while True:
            try:
                self._fetch_part(url, part, size, progress)
                return
            except FetchError as failure:
                if failure.permanent or failure.status not in RETRY_STATUS | {0} or attempt >= self.retries:
                    raise
                self._wait(attempt, failure.retry_after)
                attempt += 1

    def _fetch_part(self, url: str, part: Path, size: int | None, progress: Progress | None) -> None:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:
            part.unlink()  # longer than the real file: cannot be a prefix of it
            have = 0
        if size is not None and have == size:
            return
        try:
            reply = self._request(url, {"Range": f"bytes={have}-"} if have else {})
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # nothing left to send: the part is complete
                return
            failure = FetchError(url, exc.code, f"HTTP {exc.code} {exc.reason}")
            failure.retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            raise failure from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise FetchError(url, 0, f"network error ({getattr(exc, 'reason', exc)})") from None
        with reply:
            if have and reply.status != 206:
                have = 0  # the server ignored Range: start over
            length = reply.headers.get("Content-Length")
            total = have + int(length) if length is not None else size
            done = have
            try:
                fh = open(part, "ab" if have else "wb")  # noqa: SIM115 - `with fh` below; only open()'s error is caught here
            except OSError as exc:
                raise DocsynthError(f"{part}: cannot write ({exc.strerror})") from None
            with fh:
                if progress:  # bytes of this file; a resumed file starts part-way
                    progress.start(total, done)
                while True:
                    try:
                        block = reply.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:  # dropped mid-body
                        raise FetchError(url, 0, f"connection lost after {done} bytes ({exc})") from None
                    if not block:
                        break
                    try:
                        fh.write(block)
                    except OSError as exc:  # a full disk is not transient
                        raise DocsynthError(f"{part}: cannot write ({exc.strerror})") from None
                    done += len(block)
                    if progress:
                        progress.advance(len(block))
        if total is not None and done < total:
            raise FetchError(url, 0, f"connection closed after {done} of {total} bytes")

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
