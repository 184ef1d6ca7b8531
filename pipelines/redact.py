"""Credentials never reach a terminal, a log or a record: `redact` masks them in any text."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^:/@\s]+):([^@\s/]+)@")
_QUERY = re.compile(r"(?i)([?&;](?:password|passwd|pwd|token|access_token|secret|api_key|apikey|key)=)[^&;\s]+")
MASK = "***"


def redact(text: str) -> str:
    """`text` with URL passwords (`scheme://user:secret@host`) and secret query values masked."""
    return _QUERY.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>\g<2>:{MASK}@", text))


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """A URL without its `user:password@` part, and that pair (None when it has none)."""
    match = _USERINFO.search(url)
    if match is None:
        return url, None
    return url[: match.start()] + match.group(1) + url[match.end() :], (match.group(2), match.group(3))
