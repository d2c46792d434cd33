"""Which requests `gankit serve` answers: only those addressed to it, by a name it was told.

DNS rebinding: a page on any site (evil.example) can have its own name resolve to 127.0.0.1 a
moment after it loaded, then fetch http://evil.example:PORT/. The browser sends that to this
server with `Host: evil.example:PORT` and, for a POST, `Origin: http://evil.example:PORT`: the
same origin as far as the browser can tell, so comparing Origin with Host lets it through, and
the page reads the answers. The name is what such a page cannot choose, so the server keeps a
list of names (the Host allowlist, as Jupyter and the JavaScript dev servers do):

- `localhost`, `127.0.0.1` and `::1` (they reach only this machine, whatever the bound address),
- the address it was bound to (`--host`), unless that is a wildcard (0.0.0.0, ::), which names
  no machine: serving every network, it answers only the names given with `--allow-host`,
- each `--allow-host NAME`.

A request whose Host is not on the list gets a 400 with one line, before any route runs (the
page, /api/info and the panels alike). A POST's Origin must be http://NAME:PORT with NAME on the
list and PORT the served port or the one in the request's Host (a forwarded port, as with
`ssh -L 9000:localhost:PORT`, arrives with the browser's port). The port in Host is not checked:
a rebinding page reaches the served port anyway, and a forwarded one arrives with another.
Starlette's TrustedHostMiddleware matches names the same way (it drops the port too), but
answers "Invalid host header" in plain text; this answers the app's JSON line, naming the list.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from gankit.errors import GankitError

LOCAL = ("localhost", "127.0.0.1", "::1")
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_HOST = re.compile(r"(?P<name>\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(:(?P<port>[0-9]{1,5}))?")


def _normal(name: str) -> str | None:
    """A host name or IP address as Host headers carry it, in one form (lower case, IPv6 without
    brackets, no trailing dot), or None when it is neither."""
    name = name.strip().lower().rstrip(".")
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    return name if name == bare and _NAME.fullmatch(name) else None


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The names `gankit serve --host BOUND --allow-host EXTRA...` answers (see the module docstring)."""
    names = list(LOCAL)
    own = _normal(bound)
    if own is not None and not (own in ("0.0.0.0", "::")):
        names.append(own)
    for name in extra:
        n = _normal(name)
        if n is None:
            raise GankitError(f"--allow-host {name!r}: expected a host name or address as the browser's address "
                              "bar has it (myhost, myhost.lan, 192.168.1.4, [fe80::1]), without scheme or port")
        names.append(n)
    return tuple(dict.fromkeys(names))


def split_host(header: str | None) -> tuple[str, int | None] | None:
    """A Host header's (name, port), the name in `_normal` form; None when it is missing or malformed."""
    m = _HOST.fullmatch(header or "")
    if m is None:
        return None
    name = _normal(m["name"])
    port = int(m["port"]) if m["port"] else None
    if name is None or (port is not None and port > 65535):
        return None
    return name, port


def origin_allowed(origin: str, host: str | None, served_port: int | None, allowed: tuple[str, ...]) -> bool:
    """Whether a POST's Origin is this server's own page: http, a listed name, and the served port
    or the port the request's Host names."""
    try:
        u = urlsplit(origin)
        port = u.port or 80
    except ValueError:  # a port that is not a number
        return False
    if u.scheme != "http" or u.hostname is None or _normal(u.hostname) not in allowed:
        return False
    via = split_host(host)
    return port in (served_port, (via[1] or 80) if via else None)


class HostCheck:
    """ASGI middleware: a request whose Host is not in `allowed` is answered 400 with one line."""

    def __init__(self, app, allowed: tuple[str, ...]):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":  # the app has no websocket routes: the router closes those
            header = Headers(scope=scope).get("host")
            parsed = split_host(header)
            if parsed is None or parsed[0] not in self.allowed:
                said = f"Host {header!r}" if header else "a request without a Host header"
                msg = (f"{said} refused: this server answers requests addressed to "
                       f"{', '.join(self.allowed)} only (gankit serve --allow-host NAME adds a name)")
                await JSONResponse({"error": msg}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)
