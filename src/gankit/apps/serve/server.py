"""Serving the app on a socket: binding, saying where, and running uvicorn until Ctrl-C.

The socket is bound here rather than by uvicorn, so that port 0 gets a free port whose real
number can be printed, and a port in use is one GankitError line rather than uvicorn's log and
exit. Ctrl-C (SIGINT) or SIGTERM stops uvicorn, which finishes the requests in flight, and
`run_forever` returns: the command exits 0, with no KeyboardInterrupt traceback.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import sys
import threading
import time

import uvicorn

from gankit.errors import GankitError

GRACE_S = 5  # seconds a model call in flight may take to finish after Ctrl-C


def is_loopback(host: str) -> bool:
    """127.x, ::1 or localhost: only this machine can connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), or a one-line GankitError."""
    if not 0 <= port <= 65535:
        raise GankitError(f"--port {port}: expected 0..65535 (0: a free port)")
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as e:
        raise GankitError(f"--host {host}: not an address this machine can listen on ({e.strerror}); "
                          "use 127.0.0.1 (this machine only) or 0.0.0.0 (every network)") from None
    sock = socket.socket(family, kind, proto)
    try:
        # a port freed a moment ago (a restarted server's connections in TIME_WAIT) may be reused;
        # one another server listens on still may not
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise GankitError(f"port {port} on {host} is in use: pick another with --port, "
                              "or --port 0 for a free one") from None
        if e.errno == errno.EACCES:
            raise GankitError(f"port {port} on {host}: permission denied (ports below 1024 need root); "
                              "pick another with --port, or --port 0 for a free one") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise GankitError(f"--host {host}: not an address of this machine ({e.strerror})") from None
        raise GankitError(f"cannot listen on {host}:{port} ({e.strerror})") from None
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host  # an IPv6 literal goes in brackets
    return f"http://{shown}:{port}/"


def warn_if_public(host: str, names: tuple[str, ...] = ()) -> None:
    """One line on stderr when `host` is not loopback: who can reach the server, and by which
    `names` (the Host allowlist) it answers."""
    if not is_loopback(host):
        answers = (f"; it answers requests addressed to {', '.join(names)} only (--allow-host NAME adds the name "
                   f"others reach it by, e.g. --allow-host {socket.gethostname()})") if names else ""
        print(f"gankit serve: warning: listening on {host}, not loopback: anyone who can reach this machine "
              f"on that network can use the model and send it files (--host 127.0.0.1 keeps it local){answers}",
              file=sys.stderr, flush=True)


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame) -> None:
        # uvicorn re-raises the signal it caught once it has shut down (SIGINT: a
        # KeyboardInterrupt traceback; SIGTERM: death by signal). Not recording it makes
        # run() simply return, so serve() returns and the command exits 0.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for requests in flight
        else:
            self.should_exit = True


def run_forever(app, sock: socket.socket) -> None:
    """Serve `app` on the bound `sock` until SIGINT/SIGTERM; returns normally. Quiet: uvicorn
    logs warnings and errors only, and no access log."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=GRACE_S)
    try:
        _Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # a Ctrl-C before uvicorn installed its handlers
        pass
    finally:
        sock.close()


class Background:
    """The app served from a thread of this process (a notebook, the tests), on a free port:

        with Background(app) as url:
            httpx.get(url + "api/info")

    Entering waits until uvicorn accepts connections; leaving stops it and joins the thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.sock = bind(host, port)
        self.url = url_of(self.sock, host)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=GRACE_S)
        self.server = _Server(config)  # outside the main thread uvicorn installs no signal handlers
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background server did not start")
            time.sleep(0.01)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(GRACE_S + 5)
        self.sock.close()
