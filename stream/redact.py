"""Keep camera credentials out of everything we print or write.

RTSP cameras are usually addressed as ``rtsp://user:password@host:port/path``. The URL travels
into error messages (ours and FFmpeg's), log lines, status lines and report.json; every one of
those passes through :func:`redact` first, which turns ``scheme://user:pass@`` into
``scheme://***@``.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

# scheme://userinfo@ — userinfo is anything up to the last "@" before the host part ends
# (passwords may contain "@", ":" and "/" when not percent-encoded, so match greedily within
# the URL, but never across whitespace or quotes).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s'\"<>]*@")

URL_SCHEMES = ("rtsp", "rtsps")


def redact(text: object) -> str:
    """``text`` as a string, with every URL's ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", str(text))


def is_url(value: str) -> bool:
    """True when ``value`` looks like ``scheme://...`` rather than a file path."""
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is not None


def safe_name(url: str) -> str:
    """A folder name for a stream URL: host, port and path, credentials dropped, only
    ``[A-Za-z0-9._-]`` kept, never ``.``/``..``, at most 80 characters."""
    parts = urlsplit(redact(url))
    host = parts.hostname or "stream"
    raw = "_".join(p for p in (host, str(parts.port or ""), parts.path.strip("/")) if p)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._-")[:80]
    return name if name.strip(".") else "stream"


class RedactingFilter(logging.Filter):
    """Logging filter that rewrites each record's message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True
