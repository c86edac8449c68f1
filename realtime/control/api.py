"""The panel's HTTP side: Starlette routes over ``Panel``. Every request carries the run's token
(``Authorization: Bearer``, a ``token`` query parameter for <img> and EventSource, or the cookie
the page sets), compared in constant time. Work that takes time (a face's identity, a JPEG) runs
off the event loop; the preview stream sends only the newest frame, so a slow client skips frames."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from realtime.control.page import KIOSK_HTML, PANEL_HTML
from realtime.control.panel import MAX_UPLOAD_BYTES, Panel, PanelError, gallery_path

COOKIE = "realtime_token"
PREVIEW_FPS = 15
BOUNDARY = "realtime-frame"


def _token_of(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE, "")


def _error(exc: PanelError) -> JSONResponse:
    return JSONResponse({"error": exc.message, "fix": exc.fix}, status_code=exc.status)


async def _body(request: Request) -> bytes:
    """The request body, refused past the upload limit without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise PanelError(413, f"the upload is {int(declared) >> 20} MiB", f"send a photo under {MAX_UPLOAD_BYTES >> 20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise PanelError(413, "the upload is too large", f"send a photo under {MAX_UPLOAD_BYTES >> 20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    try:
        value = json.loads(await _body(request) or b"{}")
    except json.JSONDecodeError:
        raise PanelError(400, "the request body is not JSON", "send a JSON object") from None
    if not isinstance(value, dict):
        raise PanelError(400, "the request body is not a JSON object", "send a JSON object")
    return value


def _track(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PanelError(400, f"track {value!r} is not a track id", "use an id the panel lists")
    return value


def make_app(panel: Panel, token: str) -> Starlette:
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
        data = await run_in_threadpool(panel.preview.face_jpeg, int(request.path_params["track"]))
        if data is None:
            return JSONResponse({"error": "that face is not in the frame", "fix": "pick a face the panel lists"}, status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def gallery_image(request: Request) -> Response:
        return FileResponse(gallery_path(panel.faces_dir, request.path_params["name"]), headers={"Cache-Control": "max-age=60"})

    async def upload(request: Request) -> Response:
        data = await _body(request)
        track = request.query_params.get("track")
        result = await run_in_threadpool(panel.wear_upload, data, request.query_params.get("name", "photo"), int(track) if track and track.isdigit() else None)
        return JSONResponse(result)

    async def gallery(request: Request) -> Response:
        body = await _json(request)
        result = await run_in_threadpool(panel.wear_gallery, str(body.get("name", "")), _track(body.get("track")))
        return JSONResponse(result)

    async def from_frame(request: Request) -> Response:
        body = await _json(request)
        result = await run_in_threadpool(panel.wear_face_in_frame, _track(body.get("face")), _track(body.get("track")))
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

    async def steady(request: Request) -> Response:
        return JSONResponse(panel.set_steady((await _json(request)).get("steady")))

    async def record(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(panel.record, str((await _json(request)).get("action", ""))))

    async def blend(request: Request) -> Response:
        return JSONResponse(panel.set_blend(await _json(request)))

    routes = [
        Route("/", page), Route("/kiosk", page),
        Route("/api/state", state), Route("/api/numbers", numbers), Route("/api/events", events),
        Route("/api/preview.jpg", preview_jpg), Route("/api/preview.mjpg", preview_stream), Route("/api/input.mjpg", input_stream), Route("/api/faces/{track:int}.jpg", face_jpg), Route("/api/gallery/{name}", gallery_image),
        Route("/api/source/upload", upload, methods=["POST"]), Route("/api/source/gallery", gallery, methods=["POST"]),
        Route("/api/source/frame", from_frame, methods=["POST"]), Route("/api/mapping", mapping, methods=["POST"]),
        Route("/api/mode", mode, methods=["POST"]), Route("/api/generator", generator, methods=["POST"]), Route("/api/blend", blend, methods=["POST"]), Route("/api/steady", steady, methods=["POST"]),
        Route("/api/record", record, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={PanelError: lambda _request, exc: _error(exc)})  # type: ignore[dict-item]

    expected = token.encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            if not hmac.compare_digest(_token_of(request).encode(), expected):
                await JSONResponse({"error": "missing or wrong token", "fix": "open the address realtime printed at start (it carries ?token=...)"}, status_code=401)(scope, receive, send)
                return
        await app(scope, receive, send)

    guarded.app = app  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]
