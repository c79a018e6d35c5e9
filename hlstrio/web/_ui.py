"""The browser UI: library, player and sessions pages, their static assets, and poster frames.

The pages are static files that talk to the JSON API from JavaScript, so they need no auth
themselves; with users configured the page asks for a token and sends it on API calls.
Posters live under /api/v1 and follow the API's auth rule.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

import trio
from quart import Blueprint, Response, request

from ..media import MediaGone, MediaItem, PosterCache, PosterUnavailable, default_cache_dir
from ..media._poster import DEFAULT_POSTER_WIDTH, POSTER_WIDTHS
from ._errors import ApiError
from ._services import Services

STATIC_DIR = Path(__file__).parent / "static"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".css", ".js", ".svg", ".txt", ".md")

# Scripts, styles and media only from this origin. hls.js runs its transmuxer in a Worker made
# from a blob: URL and feeds the <video> through a MediaSource blob: URL; auth'd posters are
# blob: URLs too.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # HLS URLs are capability URLs: never leak one to another origin through Referer.
    "Referrer-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    etag: str  # unquoted
    content_type: str


class StaticAssets:
    """The files under `root`, read once (in a worker thread) and then served from memory.

    Only names found by listing `root` can be served, so no request path reaches the disk.
    Everything is a few hundred KiB (hls.js is most of it).
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._names: frozenset[str] | None = None
        self._loaded: dict[str, Asset] = {}

    async def get(self, name: str) -> Asset | None:
        if self._names is None:
            self._names = await trio.to_thread.run_sync(self._list)
        if name not in self._names:
            return None
        asset = self._loaded.get(name)
        if asset is None:
            try:
                asset = await trio.to_thread.run_sync(self._load, name)
            except FileNotFoundError:
                return None
            self._loaded[name] = asset
        return asset

    def _list(self) -> frozenset[str]:
        names = set()
        for dirpath, _dirs, files in os.walk(self._root):
            for file in files:
                if not file.startswith("."):
                    names.add(Path(dirpath, file).relative_to(self._root).as_posix())
        return frozenset(names)

    def _load(self, name: str) -> Asset:
        body = (self._root / name).read_bytes()
        suffix = Path(name).suffix.lower()
        content_type = _CONTENT_TYPES.get(suffix) or (
            mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        if name.endswith("LICENSE"):
            content_type = _CONTENT_TYPES[".txt"]
        compress = suffix in _COMPRESSIBLE or name.endswith("LICENSE")
        return Asset(
            body=body,
            gzipped=gzip.compress(body, mtime=0) if compress and len(body) > 1024 else None,
            etag=hashlib.sha256(body).hexdigest()[:32],
            content_type=content_type,
        )


def ui_blueprint(services: Services, static_dir: Path = STATIC_DIR) -> Blueprint:
    ui = Blueprint("ui", __name__)
    assets = StaticAssets(static_dir)
    cache_dir = services.settings.cache_dir or default_cache_dir()
    posters = PosterCache(cache_dir / "posters", services.manager.context.ffmpeg)

    async def page(name: str) -> Response:
        asset = await assets.get(name)
        if asset is None:
            raise ApiError(404, "not_found", "no such page")
        response = _asset_response(asset, "no-cache")
        response.headers.update(_PAGE_HEADERS)
        return response

    @ui.get("/")
    async def library_page() -> Response:
        return await page("index.html")

    @ui.get("/play/<media_id>")
    async def player_page(media_id: str) -> Response:
        # The page loads the item itself (it may need the user's token to do so).
        return await page("player.html")

    @ui.get("/sessions")
    async def sessions_page() -> Response:
        return await page("sessions.html")

    @ui.get("/assets/<path:name>")
    async def static_asset(name: str) -> Response:
        asset = await assets.get(name)
        if asset is None:
            raise ApiError(404, "not_found", "no such asset")
        # Revalidate every time: an upgrade must reach browsers, and a 304 costs nothing.
        response = _asset_response(asset, "no-cache")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @ui.get("/api/v1/media/<media_id>/poster.jpg")
    async def poster(media_id: str) -> Response:
        services.auth.user_for(request.headers.get("Authorization"))
        width = _poster_width(request.args.get("w"))
        item = services.library.get(media_id)
        if item is None:
            raise ApiError(404, "media_not_found", "no media with that id")
        try:
            source = await trio.to_thread.run_sync(services.library.verify, item)
            etag = await trio.to_thread.run_sync(posters.key, item, source, width)
            if request.if_none_match.contains_weak(etag):
                return _not_modified(etag, _POSTER_CACHE_CONTROL)
            body = await _poster_bytes(posters, item, source, width)
        except MediaGone as exc:
            raise ApiError(404, "media_not_found", str(exc)) from None
        except (PosterUnavailable, OSError) as exc:
            raise ApiError(404, "poster_unavailable", f"no poster for this item: {exc}") from None
        response = Response(body, status=200, content_type="image/jpeg")
        response.headers["ETag"] = f'"{etag}"'
        response.headers["Cache-Control"] = _POSTER_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return ui


# Fresh for a few minutes (a grid re-render or a back navigation costs no request), then a
# cheap revalidation: the ETag changes when the file does. Private: posters sit behind auth.
_POSTER_CACHE_CONTROL = "private, max-age=300"


def _poster_width(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_POSTER_WIDTH
    if not raw.isdigit() or int(raw) not in POSTER_WIDTHS:
        allowed = ", ".join(map(str, POSTER_WIDTHS))
        raise ApiError(400, "bad_request", f"w must be one of {allowed}")
    return int(raw)


async def _poster_bytes(posters: PosterCache, item: MediaItem, source: Path, width: int) -> bytes:
    found = await posters.get(item, source, width)
    try:
        return await trio.to_thread.run_sync(found.path.read_bytes)
    except FileNotFoundError:
        # The cache dir was emptied between the check and the read: make it once more.
        found = await posters.get(item, source, width)
        return await trio.to_thread.run_sync(found.path.read_bytes)


def _not_modified(etag: str, cache_control: str) -> Response:
    response = Response("", status=304)
    response.headers["ETag"] = f'"{etag}"'
    response.headers["Cache-Control"] = cache_control
    return response


def _asset_response(asset: Asset, cache_control: str) -> Response:
    if request.if_none_match.contains_weak(asset.etag):
        return _not_modified(asset.etag, cache_control)
    use_gzip = asset.gzipped is not None and request.accept_encodings["gzip"] > 0
    body = asset.gzipped if use_gzip and asset.gzipped is not None else asset.body
    response = Response(body, status=200, content_type=asset.content_type)
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    if asset.gzipped is not None:
        response.headers["Vary"] = "Accept-Encoding"
    response.headers["ETag"] = f'"{asset.etag}"'
    response.headers["Cache-Control"] = cache_control
    return response
