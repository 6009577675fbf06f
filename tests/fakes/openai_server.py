"""A fake OpenAI Images API (`POST /v1/images/edits`) on 127.0.0.1.

Speaks the wire format the openai SDK uses: a multipart/form-data body with `prompt`, `model`,
`n`, `size`, ... fields and the input images as files named `image[]` (or `image` for one),
`Authorization: Bearer <key>`; answers `{"created", "data": [{"b64_json"}], "usage", ...}` or
OpenAI error bodies `{"error": {"message", "type", "param", "code"}}`.

Each request is checked (auth, multipart shape, 1–16 images that decode, n, size) and recorded
in `requests` with `info` holding model, prompt, n, size, api_key, image_field, filenames,
content_types, and `images` the decoded uploads. The default reply is success: `n` PNGs, each the
mean of the uploaded images at the requested size (1024x1024 for "auto" / no size).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from ._http import (
    FakeServer,
    RecordedRequest,
    Reply,
    Responder,
    blend,
    decode_image,
    encode_png,
    parse_multipart,
)

DEFAULT_KEY = "sk-test-openai-key"
MAX_IMAGES = 16
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def openai_error(
    status: int,
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": type, "param": param, "code": code}}, headers)


class FakeOpenAI(FakeServer):
    """The fake OpenAI API. `base_url` is what the SDK wants (ends in /v1)."""

    def __init__(self, api_key: str = DEFAULT_KEY) -> None:
        super().__init__()
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    # -- request checking -------------------------------------------------------------------------

    def check(self, req: RecordedRequest) -> Reply | None:
        if req.method != "POST" or req.path != "/v1/images/edits":
            return openai_error(404, f"Invalid URL ({req.method} {req.path})")
        auth = req.header("authorization") or ""
        key = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        req.info["api_key"] = key
        if not key:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if key != self.api_key:
            return openai_error(
                401,
                f"Incorrect API key provided: {key[:3]}***{key[-4:]}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        ctype = req.header("content-type") or ""
        if not ctype.startswith("multipart/form-data"):
            return openai_error(400, "Invalid Content-Type header; expected multipart/form-data.")
        fields, files = parse_multipart(req.body, ctype)
        req.form, req.files = fields, files
        info: dict[str, Any] = {k: v[0] for k, v in fields.items() if len(v) == 1}
        req.info.update(
            model=info.get("model"),
            prompt=info.get("prompt"),
            n=int(info.get("n", 1)),
            size=info.get("size"),
            fields=fields,
        )
        if not info.get("prompt"):
            return openai_error(
                400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
            )
        image_files = [f for f in files if f.field in ("image", "image[]")]
        others = [f.field for f in files if f.field not in ("image", "image[]", "mask")]
        if others:
            return openai_error(400, f"Unrecognized file field: '{others[0]}'.", param=others[0])
        if not image_files:
            return openai_error(
                400, "Missing required parameter: 'image'.", param="image", code="missing_required_parameter"
            )
        if len(image_files) > MAX_IMAGES:
            return openai_error(
                400,
                f"Invalid 'image': array too long. Expected an array with maximum length {MAX_IMAGES}, "
                f"but got an array with length {len(image_files)} instead.",
                param="image",
                code="array_above_max_length",
            )
        req.info.update(
            image_field=sorted({f.field for f in image_files}),
            filenames=[f.filename for f in image_files],
            content_types=[f.content_type for f in image_files],
        )
        for i, f in enumerate(image_files):
            try:
                image = decode_image(f.data)
            except Exception:
                return openai_error(
                    400,
                    f"Invalid image file or mode for image {i + 1}, please check your image file.",
                    param="image",
                    code="invalid_image_file",
                )
            if image.format not in IMAGE_FORMATS:
                return openai_error(
                    400,
                    f"Invalid file 'image': unsupported mimetype ('{f.content_type}'). "
                    "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.",
                    param="image",
                    code="unsupported_file_mimetype",
                )
            req.images.append(image)
        n = req.info["n"]
        if not 1 <= n <= 10:
            return openai_error(
                400, f"Invalid 'n': integer {'below minimum value' if n < 1 else 'above maximum value'}.", param="n"
            )
        size = req.info["size"]
        if size not in (None, "auto") and self._parse_size(size) is None:
            return openai_error(
                400,
                f"Invalid value: '{size}'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.",
                param="size",
                code="invalid_value",
            )
        return None

    @staticmethod
    def _parse_size(size: str) -> tuple[int, int] | None:
        w, sep, h = size.partition("x")
        if not sep or not w.isdigit() or not h.isdigit():
            return None
        return int(w), int(h)

    # -- replies ----------------------------------------------------------------------------------

    def default_reply(self, req: RecordedRequest) -> Reply:
        return self.image()(req)

    def image(self) -> Responder:
        """Success: `n` images, the blend of the uploads at the requested size."""

        def respond(req: RecordedRequest) -> Reply:
            size = req.info.get("size")
            dims = self._parse_size(size) if size and size != "auto" else (1024, 1024)
            png = base64.b64encode(encode_png(blend(req.images, dims))).decode()
            n = req.info.get("n", 1)
            return Reply.json(
                200,
                {
                    "created": int(time.time()),
                    "background": "opaque",
                    "output_format": "png",
                    "quality": "high",
                    "size": f"{dims[0]}x{dims[1]}",
                    "data": [{"b64_json": png} for _ in range(n)],
                    "usage": {
                        "input_tokens": 50 + 323 * len(req.images),
                        "input_tokens_details": {"image_tokens": 323 * len(req.images), "text_tokens": 50},
                        "output_tokens": 4160 * n,
                        "total_tokens": 50 + 323 * len(req.images) + 4160 * n,
                    },
                },
                headers={"x-request-id": "req_fake"},
            )

        return respond

    def error(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Responder:
        reply = openai_error(status, message, type, code, param, headers)
        return lambda req: reply

    def moderation_blocked(self) -> Responder:
        return self.error(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, contact us at "
            "help.openai.com and include the request ID req_fake.",
            type="image_generation_user_error",
            code="moderation_blocked",
        )

    def content_policy_violation(self) -> Responder:
        return self.error(
            400, "Your request was rejected as a result of our safety system.", code="content_policy_violation"
        )

    def rate_limited(self, retry_after_ms: int | None = 50) -> Responder:
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else None
        return self.error(
            429,
            "Rate limit reached for gpt-image-2 in organization org-fake on images per minute (IPM): "
            "Limit 5, Used 5, Requested 1. Please try again in 12s.",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )

    def insufficient_quota(self) -> Responder:
        return self.error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            type="insufficient_quota",
            code="insufficient_quota",
        )

    def server_error(self, status: int = 500) -> Responder:
        if status == 503:
            return self.error(503, "The engine is currently overloaded, please try again later", type="server_error")
        return self.error(
            status, "The server had an error while processing your request. Sorry about that!", type="server_error"
        )

    def slow(self, seconds: float, then: Responder | None = None) -> Responder:
        def respond(req: RecordedRequest) -> Reply:
            reply = (then or self.image())(req)
            reply.delay_s = seconds
            return reply

        return respond
