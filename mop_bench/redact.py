"""Keeping credentials out of everything mop-bench records or prints.

A server URL such as `http://user:pw@host/v1?api_key=sk-...` carries secrets that
must never reach `config.json`, `fit/fit.json`, an LM's name, a report or an error
message. `clean_url` strips the user-info part and every query parameter whose name
looks secret; the LM spec applies it when it is built, so nothing downstream ever
holds the secret. Keys come from the environment only: `$OPENAI_API_KEY`, or the
variable named by `$MOP_BENCH_API_KEY_ENV`; neither is ever recorded.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

#: Query parameter names treated as secrets (matched anywhere in the name, any case).
SECRET_PARAM = re.compile(
    r"key|token|secret|passw|pwd|auth|signature|^sig$|credential|session|bearer", re.IGNORECASE
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]+@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;][^=&\s#]*(?:key|token|secret|passw|pwd|auth|signature|credential|session)"
    r"[^=&\s#]*=)[^&\s#]*",
    re.IGNORECASE,
)


def clean_url(url: str) -> tuple[str, list[str]]:
    """`url` without user-info and secret-looking query parameters, and what was removed
    (described, never the values)."""
    parts = urlsplit(url)
    removed: list[str] = []
    netloc = parts.netloc
    if "@" in netloc:
        removed.append("user-info")
        netloc = netloc.rsplit("@", 1)[1]
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if not SECRET_PARAM.search(k)]
    removed += [f"query parameter {k!r}" for k, _ in query if SECRET_PARAM.search(k)]
    if not removed:
        return url, []
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), parts.fragment)), removed


def clean_base_url(url: str) -> str:
    """`clean_url`, with a warning saying what was dropped and where keys belong."""
    clean, removed = clean_url(url)
    if removed:
        log.warning(
            "lm.base_url: removed %s from the server URL; credentials are never recorded "
            "or sent from a URL. Put the API key in $OPENAI_API_KEY (or in the variable "
            "named by $MOP_BENCH_API_KEY_ENV)",
            " and ".join(removed),
        )
    return clean


def scrub(text: str) -> str:
    """Mask credentials in any URL inside free text (error messages, tracebacks)."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + "***@", text)
    return _QUERY_SECRET.sub(lambda m: m.group("name") + "***", text)
