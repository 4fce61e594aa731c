"""HTTP for the OpenAI-compatible adapter: retries with backoff, one-line errors.

Standard library only (urllib). Every failure becomes a `ServerError`, a `ValueError`
whose message is one line saying what went wrong and what to do, so the CLI prints it
as `mop-bench: error: ...` (rc 2) instead of a traceback.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ServerError(ValueError):
    """The server is unreachable, answered with an error, or sent a body we cannot use."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace (server messages carry newlines and stack traces) and cut."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def public_url(url: str) -> str:
    """`url` without user:password, query string or fragment: what may be recorded with
    results and printed (an API key must never end up in config.json or a report)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _root(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _error_message(body: bytes) -> str:
    """The `error.message` (OpenAI shape) or `detail` (FastAPI) of an error body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return one_line(body.decode(errors="replace"))
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and err.get("message"):
            return one_line(err["message"])
        if isinstance(err, str):
            return one_line(err)
        if "detail" in payload:
            return one_line(json.dumps(payload["detail"]))
        if "message" in payload:
            return one_line(str(payload["message"]))
    return one_line(body.decode(errors="replace"))


class HTTPClient:
    """POST/GET JSON with `retries` retries on connection errors, timeouts, 429 and 5xx
    (exponential backoff: 0.5 s, 1 s, 2 s, ... capped at 8 s). A 4xx other than 429
    means the request itself is wrong, so it fails at once."""

    def __init__(self, base_url: str, *, api_key: str | None, timeout: float, retries: int) -> None:
        self.base_url = base_url
        self.public = public_url(base_url)
        self.api_key = api_key
        self.timeout = timeout
        self.retries = max(0, retries)

    def request(self, route: str, body: dict[str, Any] | None = None) -> Any:
        # a route starting with "/" is from the server's root (vLLM's /version)
        base, public = self.base_url, self.public
        if route.startswith("/"):
            base, public = _root(base), _root(public)
            route = route[1:]
        url = f"{base}/{route}"
        shown = f"{public}/{route}"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            request = urllib.request.Request(url, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except ValueError:
                    raise ServerError(
                        f"{method} {shown}: the answer is not JSON: {one_line(raw[:200].decode(errors='replace'))}"
                    ) from None
            except urllib.error.HTTPError as err:
                message = _error_message(err.read()[:2000])
                retryable = err.code == 429 or err.code >= 500
                if not retryable or last:
                    raise ServerError(f"{method} {shown} -> HTTP {err.code}: {message}") from None
            except TimeoutError as err:
                if last:
                    raise ServerError(
                        f"{method} {shown}: no answer within {self.timeout:g} s "
                        f"({attempt + 1} tries); the server is overloaded or stuck, or raise "
                        f"the timeout"
                    ) from err
            except (urllib.error.URLError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                if isinstance(reason, TimeoutError | socket.timeout):
                    if last:
                        raise ServerError(
                            f"{method} {shown}: no answer within {self.timeout:g} s "
                            f"({attempt + 1} tries)"
                        ) from None
                elif last:
                    raise ServerError(
                        f"cannot reach the server at {self.public} ({one_line(str(reason))}; "
                        f"{attempt + 1} tries): is it running, and is the address (--base-url) right?"
                    ) from None
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")
