"""The panel's HTTP side: Starlette routes over ``Panel``. Every request carries the run's token
(``Authorization: Bearer``, a ``token`` query parameter for <img> and EventSource, or the cookie
the page sets), compared in constant time. Before the token, a request must be addressed to the
panel itself: its ``Host`` (and ``Origin``, when a browser sends one) must name the address the
connection came in on, so a page on another port or a rebound DNS name cannot drive the run with
the cookie (SameSite ignores ports). JSON endpoints take only ``application/json`` bodies, which a
page elsewhere cannot send without the browser asking first. Every number is range-checked.
Work that takes time (a face's identity, a JPEG) runs off the event loop; the preview stream sends
only the newest frame, so a slow client skips frames."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from realtime.control.page import KIOSK_HTML, PANEL_HTML
from realtime.control.panel import MAX_UPLOAD_BYTES, Panel, PanelError, gallery_path
from realtime.live import LIVE_SECTIONS

COOKIE = "realtime_token"
PREVIEW_FPS = 15
BOUNDARY = "realtime-frame"
MAX_JSON_BYTES = 64 << 10  # every JSON request is a few fields
MAX_TRACK_ID = 2**31 - 1
MAX_JSON_DIGITS = 15  # any number the panel takes fits; a longer one is refused before it is converted
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
# on every response: never framed (clickjacking), no Referer (the page's address carries the token), no sniffing
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def _token_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE, "")


def _error(exc: PanelError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=exc.status)


async def _body(request: Request, limit: int = MAX_UPLOAD_BYTES, what: str = "upload", fix: str | None = None) -> bytes:
    """The request body, refused past ``limit`` without reading the rest (whether or not it
    declared its length)."""
    fix = fix or f"send a photo under {limit >> 20} MiB"
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and (len(declared) > MAX_JSON_DIGITS or int(declared) > limit):
        raise PanelError(413, f"the {what} is too large ({declared[:MAX_JSON_DIGITS + 1]} bytes declared)", fix)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PanelError(413, f"the {what} is too large", fix)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise PanelError(400, f"the number {text[:12]}… ({len(text)} digits) is out of range", "send the numbers the panel lists (ids, indexes, settings)")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PanelError(400, f"the number {text[:24]} is out of range", "send a finite number")
    return value


def _json_constant(text: str) -> Any:
    raise PanelError(400, f"{text} is not a number the panel takes", "send a finite number")


async def _json(request: Request) -> dict[str, Any]:
    """The body as a JSON object: only ``application/json`` (a form or a ``text/plain`` fetch from
    another page is refused), at most 64 KiB, every number finite and of sensible length."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise PanelError(415, f"this endpoint takes JSON, not {media_type or 'a body without a Content-Type'}", "send the body with Content-Type: application/json")
    body = await _body(request, MAX_JSON_BYTES, "request body", f"send a JSON object under {MAX_JSON_BYTES >> 10} KiB")
    try:
        value = json.loads(body or b"{}", parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, nesting past the parser's depth
        raise PanelError(400, "the request body is not JSON", "send a JSON object") from None
    if not isinstance(value, dict):
        raise PanelError(400, "the request body is not a JSON object", "send a JSON object")
    return value


def _track(value: Any, what: str = "track") -> int | None:
    """A track id from JSON: a whole number from 0 to 2³¹−1, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TRACK_ID:
        raise PanelError(400, f"{what} {str(value)[:24]!r} is not a track id", "use an id the panel lists")
    return value


def _track_text(text: str | None, what: str = "track") -> int | None:
    """A track id from a query string or a path: digits only, checked before conversion."""
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_TRACK_ID)):
        raise PanelError(400, f"{what} {text[:24]!r} is not a track id", "use an id the panel lists")
    return _track(int(text), what)


def _address(value: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` (an IPv6 host in brackets) → (host lowercased, port); None if malformed."""
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.hostname, port if port is not None else default_port


def _own_names(local_host: str, bind_host: str | None) -> set[str]:
    """The names the panel answers to on a connection that came in on ``local_host``: that
    address, the loopback names when it is loopback, the host given to --control, and this
    machine's name when --control listens on every address."""
    names = {local_host.lower()}
    try:
        loopback = ipaddress.ip_address(local_host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        names.update(LOOPBACK_NAMES)
    if bind_host is not None and bind_host.lower() not in WILDCARD_HOSTS:
        names.add(bind_host.lower())
    if bind_host is not None and bind_host in WILDCARD_HOSTS:
        names.update({socket.gethostname().lower(), socket.gethostname().lower() + ".local"})
    return names


def check_same_origin(scope: Any, bind_host: str | None) -> str | None:
    """Why a request is not addressed to the panel itself (None when it is): its ``Host`` must
    name the address and port the connection came in on, and its ``Origin``, when present, the
    same (http://host:port)."""
    server = scope.get("server")
    if not server:
        return "the request arrived on no known address"
    names = _own_names(str(server[0]), bind_host)
    headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
    host = _address(headers.get("host", ""), 80)
    if host is None or host[0] not in names or host[1] != server[1]:
        return f"the request is for host {headers.get('host', '(none)')[:80]!r}, not this panel"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        address = _address(parts.netloc, 80) if parts.scheme == "http" and parts.path in ("", "/") else None
        if address is None or address[0] not in names or address[1] != server[1]:
            return f"the request comes from the page {origin[:80]!r}, not from the panel"
    return None


def make_app(panel: Panel, token: str, bind_host: str | None = None) -> Starlette:
    """The panel's app. ``bind_host``: the host given to --control (also accepted as a name in
    ``Host``); requests are checked against the address each connection came in on."""

    async def page(request: Request) -> Response:
        response = HTMLResponse(PANEL_HTML if request.url.path != "/kiosk" else KIOSK_HTML)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def state(_: Request) -> Response:
        return JSONResponse(panel.state())

    async def numbers(_: Request) -> Response:
        return JSONResponse(panel.numbers())

    async def preview_jpg(_: Request) -> Response:
        frame = await run_in_threadpool(panel.preview.jpeg)
        if frame is None:
            return JSONResponse({"error": "no frame yet", "fix": "wait for the pipeline to start"}, status_code=503)
        return Response(frame[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def mjpeg(request: Request, input_side: bool) -> Response:
        async def frames() -> AsyncIterator[bytes]:
            last = -1
            if input_side:
                panel.watch_input(True)
            try:
                while not panel.closing.is_set() and not await request.is_disconnected():
                    frame = await run_in_threadpool(panel.preview.jpeg, input_side=input_side)
                    if frame is not None and frame[0] != last:
                        last = frame[0]
                        yield f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame[1])}\r\n\r\n".encode() + frame[1] + b"\r\n"
                    await asyncio.sleep(1 / PREVIEW_FPS)
            finally:
                if input_side:
                    panel.watch_input(False)

        return StreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}", headers={"Cache-Control": "no-store"})

    async def preview_stream(request: Request) -> Response:
        return mjpeg(request, input_side=False)

    async def input_stream(request: Request) -> Response:
        if panel.swap is None:  # the swap stage makes the input copies: without it the view would never show a frame
            raise PanelError(409, "this run has no input view (it swaps no faces)", "start it with --generator to see the input beside the output")
        return mjpeg(request, input_side=True)

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            while not panel.closing.is_set() and not await request.is_disconnected():
                yield f"data: {json.dumps({**panel.numbers(), 'state': panel.state()})}\n\n"
                for _ in range(10):  # a second between updates, closing within a tenth of one
                    if panel.closing.is_set():
                        break
                    await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def face_jpg(request: Request) -> Response:
        track = _track_text(request.path_params["track"])
        data = await run_in_threadpool(panel.preview.face_jpeg, track) if track is not None else None
        if data is None:
            return JSONResponse({"error": "that face is not in the frame", "fix": "pick a face the panel lists"}, status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def gallery_image(request: Request) -> Response:
        return FileResponse(gallery_path(panel.faces_dir, request.path_params["name"]), headers={"Cache-Control": "max-age=60"})

    async def upload(request: Request) -> Response:
        data = await _body(request)
        track = _track_text(request.query_params.get("track"))
        result = await run_in_threadpool(panel.wear_upload, data, request.query_params.get("name", "photo"), track)
        return JSONResponse(result)

    async def gallery(request: Request) -> Response:
        body = await _json(request)
        result = await run_in_threadpool(panel.wear_gallery, str(body.get("name", "")), _track(body.get("track")))
        return JSONResponse(result)

    async def from_frame(request: Request) -> Response:
        body = await _json(request)
        result = await run_in_threadpool(panel.wear_face_in_frame, _track(body.get("face"), "face"), _track(body.get("track")))
        return JSONResponse(result)

    async def mapping(request: Request) -> Response:
        body = await _json(request)
        track = _track(body.get("track"))
        if track is None:
            raise PanelError(400, "no track given", 'send {"track": ID, "wear": "default" | "none" | SOURCE}')
        return JSONResponse(panel.map_track(track, str(body.get("wear", "default"))))

    async def generator(request: Request) -> Response:
        return JSONResponse(panel.set_generator((await _json(request)).get("index")))

    async def mode(request: Request) -> Response:
        return JSONResponse(panel.set_mode(str((await _json(request)).get("mode", ""))))

    def live(section: str) -> Any:
        async def change(request: Request) -> Response:
            return JSONResponse(panel.set_live(section, await _json(request)))

        return change

    async def steady(request: Request) -> Response:  # /api/swap {"steady": W}, as older pages send it
        return JSONResponse(panel.set_live("swap", {"steady": (await _json(request)).get("steady")}))

    async def record(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(panel.record, str((await _json(request)).get("action", ""))))

    routes = [
        Route("/", page), Route("/kiosk", page),
        Route("/api/state", state), Route("/api/numbers", numbers), Route("/api/events", events),
        Route("/api/preview.jpg", preview_jpg), Route("/api/preview.mjpg", preview_stream), Route("/api/input.mjpg", input_stream), Route("/api/faces/{track}.jpg", face_jpg), Route("/api/gallery/{name}", gallery_image),
        Route("/api/source/upload", upload, methods=["POST"]), Route("/api/source/gallery", gallery, methods=["POST"]),
        Route("/api/source/frame", from_frame, methods=["POST"]), Route("/api/mapping", mapping, methods=["POST"]),
        Route("/api/mode", mode, methods=["POST"]), Route("/api/generator", generator, methods=["POST"]), Route("/api/steady", steady, methods=["POST"]),
        Route("/api/record", record, methods=["POST"]),
        # the live options, one endpoint per section (/api/blend, /api/swap): {"name": value, ...}
        *(Route(f"/api/{section}", live(section), methods=["POST"]) for section in LIVE_SECTIONS),
    ]
    app = Starlette(routes=routes, exception_handlers={PanelError: lambda _request, exc: _error(exc)})  # type: ignore[dict-item]

    expected = token.encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        foreign = check_same_origin(scope, bind_host)
        if foreign is not None:
            await JSONResponse({"error": foreign, "fix": "use the panel's own page, at the address realtime printed at start"}, status_code=403)(scope, receive, send_with_headers)
            return
        if not hmac.compare_digest(_token_of(Request(scope)).encode(), expected):
            await JSONResponse({"error": "missing or wrong token", "fix": "open the address realtime printed at start (it carries ?token=...)"}, status_code=401)(scope, receive, send_with_headers)
            return
        await app(scope, receive, send_with_headers)

    guarded.app = app  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]
