"""A fake Gemini API (`generativelanguage.googleapis.com`) for the image models, on 127.0.0.1.

Speaks the REST wire format the google-genai SDK uses:

    POST /{v1beta|v1}/models/{model}:generateContent     header x-goog-api-key: <key>
    {"contents": [{"role": "user", "parts": [{"text": ...}, {"inlineData": {"mimeType", "data"}}]}],
     "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}, "seed": 1}}

and answers with real response bodies (`candidates[0].content.parts[].inlineData`, `finishReason`,
`promptFeedback.blockReason`, `usageMetadata`) or Google API error bodies
(`{"error": {"code", "message", "status", "details": [...]}}`).

Each request is checked (path, key, JSON shape, base64 images that decode, known config values);
a malformed one gets the 4xx the real API would send. Then it is recorded in `requests` with
`info` holding model, api_version, api_key, texts, mime_types, generation_config, aspect_ratio,
image_size, response_modalities, seed, and `images` holding the decoded inline images.

The default reply is success: a PNG that is the mean of the received images, sized as the real
model sizes a 1K image for the requested aspect ratio. Script other replies with
`fake.script(fake.text_only("..."), fake.rate_limited(), ...)`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from typing import Any

from ._http import FakeServer, RecordedRequest, Reply, Responder, blend, decode_image, encode_png

DEFAULT_KEY = "test-gemini-key"
DEFAULT_MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview")

# Output sizes of the Gemini image models at 1K, per aspect ratio (Google's published table).
SIZES_1K = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
IMAGE_SIZE_SCALE = {"1K": 1, "2K": 2, "4K": 4}
MODALITIES = {"TEXT", "IMAGE", "AUDIO"}
REQUEST_FIELDS = {
    "contents",
    "generationConfig",
    "safetySettings",
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
    "labels",
}
_URLSAFE = str.maketrans("-_", "+/")
PATH_RE = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")


def google_error(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply.json(code, {"error": error})


class FakeGemini(FakeServer):
    """The fake Gemini API. `scale` shrinks the output image (1.0 = real sizes)."""

    def __init__(self, api_key: str = DEFAULT_KEY, models: tuple[str, ...] = DEFAULT_MODELS, scale: float = 1.0):
        super().__init__()
        self.api_key = api_key
        self.models = set(models)
        self.scale = scale
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return self.url

    # -- request checking -------------------------------------------------------------------------

    def check(self, req: RecordedRequest) -> Reply | None:
        m = PATH_RE.match(req.path)
        if req.method != "POST" or not m:
            return google_error(404, "NOT_FOUND", f"The requested URL {req.path} was not found on this server.")
        api_version, model = m.groups()
        key = req.header("x-goog-api-key") or (req.query.get("key") or [None])[0]
        req.info.update(api_version=api_version, model=model, api_key=key)
        if not key:
            return google_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if model not in self.models:
            return google_error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version {api_version}, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        if not (req.header("content-type") or "").startswith("application/json"):
            return google_error(400, "INVALID_ARGUMENT", "Request content type must be application/json.")
        try:
            body = json.loads(req.body)
        except ValueError as exc:
            return google_error(400, "INVALID_ARGUMENT", f"Invalid JSON payload received. {exc}")
        req.json = body
        if not isinstance(body, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.")
        unknown = set(body) - REQUEST_FIELDS
        if unknown:
            name = sorted(unknown)[0]
            return google_error(
                400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
        problem = self._check_contents(req, body.get("contents"))
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        problem = self._check_config(req, body.get("generationConfig") or {})
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        return None

    def _check_contents(self, req: RecordedRequest, contents: Any) -> str | None:
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        texts: list[str] = []
        mimes: list[str] = []
        for i, content in enumerate(contents):
            parts = content.get("parts") if isinstance(content, dict) else None
            if not isinstance(parts, list) or not parts:
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            if content.get("role", "user") not in ("user", "model"):
                return f"* GenerateContentRequest.contents[{i}].role: Please use a valid role: user, model."
            for j, part in enumerate(parts):
                kinds = [k for k in ("text", "inlineData", "inline_data", "fileData", "file_data") if k in part]
                if len(kinds) != 1:
                    return (
                        f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof field "
                        "'data' must have one initialized field"
                    )
                if "text" in part:
                    texts.append(part["text"])
                    continue
                blob = part.get("inlineData") or part.get("inline_data") or {}
                mime = blob.get("mimeType") or blob.get("mime_type")
                if not mime:
                    return (
                        f"* GenerateContentRequest.contents[{i}].parts[{j}].inline_data.mime_type: "
                        "mime_type is not specified"
                    )
                try:
                    # proto3 JSON bytes: standard or URL-safe base64 (the SDK sends URL-safe)
                    raw = base64.b64decode(blob.get("data", "").translate(_URLSAFE), validate=True)
                except (binascii.Error, ValueError):
                    return (
                        f"Invalid value at 'contents[{i}].parts[{j}].inline_data.data' (TYPE_BYTES), "
                        "Base64 decoding failed"
                    )
                try:
                    image = decode_image(raw)
                except Exception:
                    return (
                        "Unable to process input image. Please retry or report in "
                        f"https://developers.generativeai.google/guide/troubleshooting (part {j})"
                    )
                if image.format and f"image/{image.format.lower()}" != mime.replace("jpg", "jpeg"):
                    return f"contents[{i}].parts[{j}]: mime type {mime} does not match the {image.format} data"
                mimes.append(mime)
                req.images.append(image)
        req.info.update(texts=texts, mime_types=mimes)
        return None

    def _check_config(self, req: RecordedRequest, config: dict[str, Any]) -> str | None:
        modalities = config.get("responseModalities") or config.get("response_modalities") or ["TEXT", "IMAGE"]
        bad = [m for m in modalities if m not in MODALITIES]
        if bad:
            return (
                "Invalid value at 'generation_config.response_modalities[0]' "
                f'(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), "{bad[0]}"'
            )
        image_config = config.get("imageConfig") or config.get("image_config") or {}
        ratio = image_config.get("aspectRatio") or image_config.get("aspect_ratio")
        if ratio is not None and ratio not in SIZES_1K:
            return f"Unsupported aspect ratio: {ratio}. Supported: {', '.join(SIZES_1K)}"
        size = image_config.get("imageSize") or image_config.get("image_size")
        if size is not None and size not in IMAGE_SIZE_SCALE:
            return f"Unsupported image size: {size}. Supported: 1K, 2K, 4K"
        req.info.update(
            generation_config=config,
            response_modalities=list(modalities),
            aspect_ratio=ratio,
            image_size=size,
            seed=config.get("seed"),
        )
        return None

    # -- replies ----------------------------------------------------------------------------------

    def output_size(self, req: RecordedRequest) -> tuple[int, int]:
        w, h = SIZES_1K[req.info.get("aspect_ratio") or "1:1"]
        k = IMAGE_SIZE_SCALE[req.info.get("image_size") or "1K"] * self.scale
        return max(1, round(w * k)), max(1, round(h * k))

    def _envelope(self, req: RecordedRequest, candidate: dict[str, Any] | None, **extra: Any) -> Reply:
        body: dict[str, Any] = {}
        if candidate is not None:
            body["candidates"] = [candidate]
        body.update(extra)
        body["usageMetadata"] = {
            "promptTokenCount": 12 + 258 * len(req.images),
            "candidatesTokenCount": 1290 if candidate and "content" in candidate else 0,
            "totalTokenCount": 12 + 258 * len(req.images) + 1290,
        }
        body["modelVersion"] = req.info.get("model")
        body["responseId"] = f"fake-{next(self._ids)}"
        return Reply.json(200, body)

    def default_reply(self, req: RecordedRequest) -> Reply:
        return self.image()(req)

    def image(self, text: str | None = None, finish_reason: str = "STOP") -> Responder:
        """Success: one image (the blend of the inputs), preceded by `text` or, when TEXT was asked for, a caption."""

        def respond(req: RecordedRequest) -> Reply:
            parts: list[dict[str, Any]] = []
            caption = text
            if caption is None and "TEXT" in req.info.get("response_modalities", []):
                caption = "Here is the image you asked for."
            if caption:
                parts.append({"text": caption})
            png = encode_png(blend(req.images, self.output_size(req)))
            parts.append({"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}})
            return self._envelope(
                req, {"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, "index": 0}
            )

        return respond

    def text_only(self, text: str = "I can't draw that, but here is a description instead.") -> Responder:
        """The model answers with text and no image (finishReason STOP)."""
        return lambda req: self._envelope(
            req, {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}
        )

    def finish(self, reason: str = "IMAGE_SAFETY", message: str | None = None) -> Responder:
        """A candidate with no content that stopped for `reason` (IMAGE_SAFETY, PROHIBITED_CONTENT, NO_IMAGE...)."""

        def respond(req: RecordedRequest) -> Reply:
            candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
            if message:
                candidate["finishMessage"] = message
            if reason in ("SAFETY", "IMAGE_SAFETY"):
                candidate["safetyRatings"] = [
                    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True},
                    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                ]
            return self._envelope(req, candidate)

        return respond

    def prompt_blocked(self, reason: str = "PROHIBITED_CONTENT") -> Responder:
        """No candidates; `promptFeedback.blockReason` says why."""
        return lambda req: self._envelope(
            req,
            None,
            promptFeedback={
                "blockReason": reason,
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
            },
        )

    def error(self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> Responder:
        reply = google_error(code, status, message, details)
        return lambda req: reply

    def rate_limited(self, retry_delay: str | None = "0.05s") -> Responder:
        """429 RESOURCE_EXHAUSTED with QuotaFailure and (unless None) a RetryInfo `retryDelay`."""
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if retry_delay is not None:
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
        return self.error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            details,
        )

    def server_error(self, code: int = 500) -> Responder:
        if code == 503:
            return self.error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
        return self.error(
            code,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        )

    def slow(self, seconds: float, then: Responder | None = None) -> Responder:
        """Answer after `seconds` (a client with a shorter timeout gives up first)."""

        def respond(req: RecordedRequest) -> Reply:
            reply = (then or self.image())(req)
            reply.delay_s = seconds
            return reply

        return respond
