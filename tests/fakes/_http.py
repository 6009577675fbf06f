"""A small threaded HTTP server on 127.0.0.1 that records requests and plays scripted replies.

Vendor fakes (`gemini_server`, `openai_server`) subclass `FakeServer`: they check each request
against the vendor's wire format, record it, then answer with the next scripted reply (or their
default success reply when the script is empty).
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image


@dataclass
class Reply:
    """One HTTP answer. `delay_s` sleeps before answering (to trip client timeouts)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status=status,
            body=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        )


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class RecordedRequest:
    """Everything the client sent, parsed. Vendor fakes fill `json`, `form`, `files`, `images`, `info`."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


Responder = Callable[[RecordedRequest], Reply]


class FakeServer:
    """Base class: start/stop, the request log and the reply script."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[Responder] = deque()
        self._forever: Responder | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._serve(self)

            def do_GET(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port> (no trailing slash)."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- script -----------------------------------------------------------------------------------

    def script(self, *responders: Responder) -> None:
        """Queue replies, one per request, in order."""
        with self._lock:
            self._script.extend(responders)

    def always(self, responder: Responder | None) -> None:
        """Answer every request (once the script is used up) with `responder`; None restores the default."""
        self._forever = responder

    @property
    def pending(self) -> int:
        return len(self._script)

    # -- for subclasses ---------------------------------------------------------------------------

    def check(self, req: RecordedRequest) -> Reply | None:
        """Parse `req` into its fields and return an error Reply if it breaks the wire format."""
        return None

    def default_reply(self, req: RecordedRequest) -> Reply:
        raise NotImplementedError

    # -- plumbing ---------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        body = _read_body(handler)
        req = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        try:
            reply = self.check(req)
        except Exception as exc:  # a bug in the fake or a garbled request: answer 400, keep serving
            reply = Reply.json(400, {"error": {"code": 400, "message": f"fake could not parse request: {exc}"}})
        with self._lock:
            self.requests.append(req)
            responder = None
            if reply is None:
                responder = self._script.popleft() if self._script else self._forever
        if reply is None:
            reply = responder(req) if responder is not None else self.default_reply(req)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.end_headers()
            handler.wfile.write(reply.body)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, list[str]], list[UploadedFile]]:
    """Fields and files of a multipart/form-data body."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + m.group(1).encode()
    fields: dict[str, list[str]] = {}
    files: list[UploadedFile] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, data = chunk.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name_m = re.search(r'\bname="([^"]*)"', disposition)
        file_m = re.search(r'\bfilename="([^"]*)"', disposition)
        if not name_m:
            raise ValueError(f"multipart part without a name: {disposition!r}")
        if file_m:
            files.append(UploadedFile(name_m.group(1), file_m.group(1), headers.get("content-type"), data))
        else:
            fields.setdefault(name_m.group(1), []).append(data.decode())
    return fields, files


def decode_image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        out = im.copy()
        out.format = im.format  # copy() drops it; the fakes check it against the declared MIME type
        return out


def blend(images: list[Image.Image], size: tuple[int, int]) -> Image.Image:
    """The mean of `images` resized to `size` (a gradient when there are none): a real, decodable image."""
    if not images:
        w, h = size
        x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
        y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
        arr = np.concatenate(
            [np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)), (x + y) / 2 * np.ones((h, w, 1))], axis=2
        )
        return Image.fromarray(arr.astype(np.uint8), "RGB")
    stack = np.stack(
        [np.asarray(im.convert("RGB").resize(size, Image.Resampling.BILINEAR), np.float32) for im in images]
    )
    return Image.fromarray(stack.mean(axis=0).round().astype(np.uint8), "RGB")


def encode_png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
