"""P3's baseline: one bare Quart-Trio route on hlstrio's server stack (same Hypercorn config,
same ASGI shield), answering a fixed playlist body. `python -m bench._bare BODY_FILE`."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import hypercorn.trio
import trio
from quart import Response
from quart_trio import QuartTrio

from hlstrio._config import Settings
from hlstrio._server import hypercorn_config
from hlstrio.web import ShieldFinalSend


def main(body_file: str) -> None:
    body = Path(body_file).read_bytes()
    app = QuartTrio("bare", static_folder=None)

    @app.get("/hls/<session_id>/index.m3u8")
    async def playlist(session_id: str) -> Response:
        response = Response(body, status=200, content_type="application/vnd.apple.mpegurl")
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    async def serve() -> None:
        config = hypercorn_config(Settings(port=0))
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(hypercorn.trio.serve, ShieldFinalSend(app), config))
            print(f"bare quart-trio listening on {binds[0]}", flush=True)

    trio.run(serve)


if __name__ == "__main__":
    main(sys.argv[1])
