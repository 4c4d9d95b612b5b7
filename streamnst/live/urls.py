"""Output URLs carry secrets: a stream key (the last part of an RTMP path, often a WHIP
path too), a query, and sometimes `user:password@`. Every message, status line and JSON
summary shows them through `mask_url`, and a library's message through `hide`."""

from __future__ import annotations

from urllib.parse import urlsplit

HIDDEN = "****"


def split(url: str):
    """urlsplit, or None for what it cannot read (`rtmp://[::1/app/K`: a bad IPv6 host)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it: a port out of range raises)
    except ValueError:
        return None
    return parts


def host(parts) -> str:
    """The `host[:port]` of split URL `parts`, without any user or password."""
    return parts.netloc.rpartition("@")[2]


def mask_url(url: str, whole_path: bool = False) -> str:
    """`url` with its user and password, its query and its last non-empty path part (or,
    with `whole_path`, its whole path) hidden; the scheme in lower case."""
    parts = split(url)
    if parts is None or not parts.scheme:
        return "(an unreadable URL)"
    shown = f"{parts.scheme}://" + (f"{HIDDEN}@" if "@" in parts.netloc else "") + host(parts)
    if whole_path:
        return f"{shown}/" + (HIDDEN if parts.path.strip("/") or parts.query else "")
    segments = parts.path.split("/")
    last = max((i for i, s in enumerate(segments) if s), default=None)
    if last is not None:
        segments[last] = HIDDEN
    path = "/".join(segments)
    if parts.query and last is None:
        path += HIDDEN
    return shown + path


def secrets(url: str, whole_path: bool = False) -> list[str]:
    """The parts of `url` no message may show, longest first: with `whole_path`, every
    part of its path."""
    parts = split(url)
    if parts is None:
        return [url]
    segments = [s for s in parts.path.split("/") if s]
    found = [url, parts.query, parts.path.strip("/"), parts.username or "",
             parts.password or "", *(segments if whole_path else segments[-1:])]
    return sorted({s for s in found if len(s) >= 2}, key=len, reverse=True)


def hide(text: str, url: str, *more: str | None, whole_path: bool = False) -> str:
    """`text` (a library's message) with every secret of `url`, and `more`, hidden; the
    URL itself shown as `mask_url(url, whole_path)`."""
    found = {*secrets(url, whole_path), *(m for m in more if m)}
    for secret in sorted(found, key=len, reverse=True):
        text = text.replace(secret, mask_url(url, whole_path) if secret == url else HIDDEN)
    return text
