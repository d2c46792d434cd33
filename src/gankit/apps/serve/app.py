"""The `gankit serve` web app: routes, request checks, and running the model off the event loop.

    GET  /              the page (static/index.html; app.js and app.css under /static)
    GET  /api/info      the run, its limits, and the panels its page offers (its task's serve.py)
    POST /api/PANEL     run one panel: a JSON object of its fields, or (a panel that takes
                        images) a multipart form of its images and fields
                        -> {"image": "data:image/png;base64,...", "filename", "width", "height", "notes"};
                        an answer with sound adds "audio" (a data:audio/wav URL: the clips),
                        one in words is {"text": [lines], "filename", "notes"}

Every refusal is a 400 (404 and 405 for the routing cases) with {"error": one line}
naming what was wrong and what is accepted; a request addressed to a name not on the Host
allowlist, or a POST from a page elsewhere, is refused before anything runs (`hosts`: DNS rebinding); an unexpected failure inside the model is a 500 with
one line, also logged as one line on stderr, never a traceback. The model runs in a worker thread,
so the event loop keeps answering the page and /api/info during a slow request, and under one
lock: one model call at a time keeps memory bounded and the networks' buffers unshared.
"""

from __future__ import annotations

import base64
import io
import json
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gankit.apps.serve.hosts import LOCAL, HostCheck, origin_allowed
from gankit.apps.serve.models import MAX_PIXELS, MAX_POINTS, Panel, Result, panels_of
from gankit.errors import GankitError
from gankit.media.images import read_image
from gankit.run import Run

STATIC = Path(__file__).parent / "static"
JSON_LIMIT = 64 * 1024  # bytes: a panel's fields are a few numbers
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")  # PIL decoders an upload may use
# The page loads nothing from elsewhere; results (images, audio) are data: URLs, previews blob: URLs.
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'")


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split())


def _error(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"error": _one_line(msg)}, status_code=status)


def _png(img: np.ndarray) -> str:
    a = img[:, :, 0] if img.shape[2] == 1 else img
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _decode(name: str, data: bytes, filename: str | None) -> np.ndarray:
    """An uploaded file as uint8 (H, W, C), C = 1 or 3 (as `gankit.media.images.read_image` reads files),
    or a one-line GankitError: not an image, or too many pixels (checked from the header, before
    anything is decoded)."""
    where = f"upload {name!r}" + (f" ({filename})" if filename else "")
    accepted = f"accepted: {', '.join(FORMATS)}"
    if not data:
        raise GankitError(f"{where}: empty file; {accepted}")
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise GankitError(f"{where}: {w}x{h} is {w * h} pixels; at most {MAX_PIXELS} (4096x4096) accepted")
            im.verify()  # checks the file's structure without decoding all of it
    except Image.DecompressionBombError:
        raise GankitError(f"{where}: far too many pixels; at most {MAX_PIXELS} (4096x4096) accepted") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, TypeError):
        raise GankitError(f"{where}: not an image (or a damaged one); {accepted}") from None
    with tempfile.TemporaryDirectory(prefix="gankit-serve-") as tmp:  # read_image reads files: EXIF, 16 bit, ...
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            return read_image(path)
        except GankitError:
            raise GankitError(f"{where}: corrupt, truncated or unsupported image; {accepted}") from None


def _body(request: Request, limit: int, what: str) -> Request:
    """`request` with its body counted as it arrives: over `limit` bytes, by Content-Length or
    by the bytes actually sent, is a GankitError before more is read (nothing is buffered unbounded)."""
    said = request.headers.get("content-length")
    msg = f"{what} is over the limit of {limit / 2**20:.3g} MB"
    if said is not None and said.isdigit() and int(said) > limit:
        raise GankitError(f"{msg} ({int(said) / 2**20:.3g} MB sent)")
    seen = 0

    async def receive():
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise GankitError(msg)
        return message

    return Request(request.scope, receive)


class ServeApp:
    """The routes over one loaded run."""

    def __init__(self, run: Run, max_upload_mb: float, max_samples: int, hosts: tuple[str, ...] = LOCAL):
        if not max_upload_mb > 0:
            raise GankitError(f"max_upload_mb {max_upload_mb}: must be > 0")
        if max_samples < 1:
            raise GankitError(f"max_samples {max_samples}: must be >= 1")
        self.run = run
        self.max_upload = int(max_upload_mb * 2**20)
        self.max_samples = max_samples
        panels = panels_of(run, max_samples)
        self.panels: dict[str, Panel] = panels or {}
        self.message = None if panels is not None else f"gankit serve has no page for {run.task!r} runs"
        self.lock = threading.Lock()  # one model call at a time
        self.hosts = hosts  # the names requests may be addressed to (`hosts.HostCheck` enforces it)

    # -- GET ------------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        # same-origin: the page's own POSTs always carry its origin, whatever the browser's default
        # policy (under no-referrer a browser sends `Origin: null`, which `_same_origin` refuses)
        headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "Referrer-Policy": "same-origin"}
        return FileResponse(STATIC / "index.html", headers=headers)

    def info_dict(self) -> dict:
        r = self.run
        meta = r.data_meta
        return {
            "run": r.dir.name, "task": r.task, "preset": r.config.preset, "step": r.step, "ema": r.ema,
            "kind": meta.get("kind", "image"), "shape": meta.get("shape"),
            "classes": list(meta.get("classes") or []) if r.conditional else [],
            "conditional": r.conditional,
            "limits": {"max_samples": self.max_samples, "max_upload_mb": self.max_upload / 2**20,
                       "max_pixels": MAX_PIXELS, "max_points": MAX_POINTS},
            "panels": [p.describe(name) for name, p in self.panels.items()],
            "message": self.message,
        }

    async def info(self, request: Request) -> Response:
        return JSONResponse(self.info_dict())

    # -- POST -----------------------------------------------------------------------------------
    async def panel(self, request: Request) -> Response:
        name = request.path_params["panel"]
        panel = self.panels.get(name)
        if panel is None:
            offers = ", ".join(self.panels) or "nothing"
            return _error(404, f"no panel {name!r} on this {self.run.task} run; it offers: {offers}")
        try:
            self._same_origin(request)
            if panel.uploads:
                params, files = await self._form(request, name, panel)
                images = await run_in_threadpool(lambda: {k: _decode(k, *v) for k, v in files.items()})
            else:
                params, images = self._params(name, panel, await self._json(request), form=False), {}
            result = await run_in_threadpool(self._call, panel, params, images)
            return JSONResponse(await run_in_threadpool(self._reply, result))
        except GankitError as e:
            return _error(400, str(e))
        except HTTPException as e:  # the form parser's own refusals (too many files, ...)
            return _error(e.status_code, str(e.detail))
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as e:  # our bug or the model's: one line here and there, no traceback
            line = _one_line(f"{type(e).__name__}: {e}")
            print(f"gankit serve: error: POST /api/{name} failed: {line}", file=sys.stderr, flush=True)
            return _error(500, f"{name} failed on the server ({line}); its terminal has the same line")

    def _call(self, panel: Panel, params: dict, images: dict) -> Result:
        with self.lock, torch.no_grad():  # no_grad is per thread: set here, in the worker
            return panel.handler(self.run, params, images)

    @staticmethod
    def _reply(result: Result) -> dict:
        out: dict = {"filename": result.filename, "notes": result.notes}
        if result.image is not None:
            h, w = result.image.shape[:2]
            out.update(image=_png(result.image), width=w, height=h)
        if result.audio is not None:
            out["audio"] = "data:audio/wav;base64," + base64.b64encode(result.audio).decode("ascii")
        if result.text is not None:
            out["text"] = result.text
        return out

    def _same_origin(self, request: Request) -> None:
        # A page on another site may POST a form here (no preflight for forms): refuse it. The
        # Origin is checked against the allowlist, not the request's Host, which a page that
        # rebound its own name to this machine sends too (`hosts`). No Origin: not a browser (curl).
        # `Origin: null` is what a sandboxed iframe, a data: URL or a file:// page sends: a page
        # whose origin is hidden, which may be anyone's; this server's own page never sends it.
        origin = request.headers.get("origin")
        server = request.scope.get("server")
        if origin == "null":
            raise GankitError("a request from a page with a hidden origin (Origin: null: a sandboxed frame, a file:// "
                              "or data: page) refused: open the page at this server's address")
        if origin and not origin_allowed(origin, request.headers.get("host"),
                                         server[1] if server else None, self.hosts):
            raise GankitError(f"a request from {origin} refused: this server answers its own page only")

    @staticmethod
    def _params(name: str, panel: Panel, raw: dict, form: bool) -> dict:
        accepted = ", ".join([*panel.fields, *panel.uploads]) or "no fields"
        for k in raw:
            if k not in panel.fields:
                raise GankitError(f"unknown field {k!r} for {name}; it accepts: {accepted}")
        return {k: f.parse(k, raw[k], form) if k in raw else f.default for k, f in panel.fields.items()}

    async def _json(self, request: Request) -> dict:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise GankitError("send the fields as a JSON object (Content-Type: application/json), "
                              f"not {ctype or 'no type'}")
        body = await _body(request, JSON_LIMIT, "the request").body()
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise GankitError(f"the body is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise GankitError('the body must be a JSON object of fields, e.g. {"n": 16, "seed": 0}')
        return data

    async def _form(self, request: Request, name: str, panel: Panel) -> tuple[dict, dict]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "multipart/form-data":
            raise GankitError(f"{name} takes a multipart form with {', '.join(panel.uploads)}; "
                              f"not {ctype or 'no type'}")
        limited = _body(request, self.max_upload, "the upload")
        # one more of each than the panel takes, so that an extra one gets our message, naming it
        form = await limited.form(max_files=len(panel.uploads) + 1, max_fields=len(panel.fields) + 1,
                                  max_part_size=JSON_LIMIT)
        try:
            raw, files = {}, {}
            accepted = ", ".join([*panel.uploads, *panel.fields])
            for k, v in form.multi_items():
                if k in raw or k in files:
                    raise GankitError(f"field {k!r} sent twice; send each of {accepted} once")
                if isinstance(v, UploadFile):
                    if k not in panel.uploads:
                        raise GankitError(f"unknown upload {k!r} for {name}; it accepts: {accepted}")
                    files[k] = (await v.read(), v.filename)
                elif k in panel.uploads:
                    raise GankitError(f"{k!r} must be an image file, not text")
                else:
                    raw[k] = v
            missing = [k for k in panel.uploads if k not in files]
            if missing:
                raise GankitError(f"missing upload {missing[0]!r}; {name} takes: {', '.join(panel.uploads)}")
            return self._params(name, panel, raw, form=True), files
        finally:
            await form.close()


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") or "error"
    if status == 404:
        detail = f"no such page {request.url.path}; the page is /, its API /api/info and /api/PANEL"
    elif status == 405:
        detail = (f"{request.method} {request.url.path} is not accepted; "
                  "the API reads with GET /api/info and runs panels with POST")
    return _error(status, detail)


def build_app(run: Run, max_upload_mb: float = 10.0, max_samples: int = 64,
              hosts: tuple[str, ...] = LOCAL) -> Starlette:
    """The Starlette app over a loaded run (see the module docstring), answering requests
    addressed to `hosts` only."""
    s = ServeApp(run, max_upload_mb, max_samples, hosts)
    app = Starlette(routes=[
        Route("/", s.index, methods=["GET"]),
        Route("/api/info", s.info, methods=["GET"]),
        Route("/api/{panel}", s.panel, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], exception_handlers={HTTPException: _http_error}, middleware=[Middleware(HostCheck, allowed=hosts)])
    app.state.serve = s  # the tests reach the panels and the lock through it
    return app
