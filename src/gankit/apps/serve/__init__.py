"""`gankit serve RUN`: a local web page over a trained run.

    serve("runs/cgan")                   # prints "gankit serve: http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    app = make_app(gankit.load("runs/cgan"))   # the Starlette app itself (tests, other servers)

What each task's page offers is `gankit.apps.serve.models` (its panels); the routes and request
checks are `gankit.apps.serve.app`; the socket and uvicorn are `gankit.apps.serve.server`. The
web libraries are the `serve` extra and are imported only here, when serving: importing this
package needs neither them nor torch.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXTRA = "gankit serve needs the serve extra: pip install 'gankit[serve]'"


def _need_extra(*modules: str) -> None:
    for name in modules:
        if importlib.util.find_spec(name) is None:
            from gankit.errors import GankitError

            raise GankitError(EXTRA)


def make_app(run, max_upload_mb: float = 10.0, max_samples: int = 64, hosts: Sequence[str] | None = None):
    """The page and its JSON API over a loaded `gankit.run.Run`, as a
    `starlette.applications.Starlette` app; `max_upload_mb` caps one request's uploads,
    `max_samples` a sample grid. It answers requests addressed to `hosts` only (default:
    localhost, 127.0.0.1, ::1; `gankit.apps.serve.hosts` says why)."""
    _need_extra("starlette", "python_multipart")
    from gankit.apps.serve.app import build_app
    from gankit.apps.serve.hosts import LOCAL, allowed_hosts

    return build_app(run, max_upload_mb, max_samples, LOCAL if hosts is None else allowed_hosts("localhost", hosts))


def _print_url(url: str) -> None:
    print(f"gankit serve: {url} (Ctrl-C to stop)", flush=True)


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 0, device: str = "cpu", ema: bool = True,
          max_upload_mb: float = 10.0, max_samples: int = 64, allow_hosts: Sequence[str] = (),
          on_ready: Callable[[str], None] | None = None) -> None:
    """Load the run once, bind host:port (0: a free port), call on_ready(url) (default: print
    "gankit serve: http://HOST:PORT/ (Ctrl-C to stop)" to stdout, flushed), serve until
    Ctrl-C/SIGTERM, return cleanly. Requests are answered when addressed to localhost, 127.0.0.1,
    ::1, `host` or a name in `allow_hosts` (`gankit.apps.serve.hosts`). A host other than
    loopback gets a warning on stderr."""
    _need_extra("starlette", "uvicorn", "python_multipart")
    from gankit.api import load
    from gankit.apps.serve.hosts import allowed_hosts
    from gankit.apps.serve.server import bind, run_forever, url_of, warn_if_public

    names = allowed_hosts(host, allow_hosts)  # a bad name is refused before the port is taken
    sock = bind(host, port)  # first: a port in use is refused before minutes of loading
    try:
        warn_if_public(host, names)
        app = make_app(load(run_dir, device=device, ema=ema), max_upload_mb, max_samples, names)
    except BaseException:
        sock.close()
        raise
    (on_ready or _print_url)(url_of(sock, host))
    sys.stdout.flush()
    run_forever(app, sock)
