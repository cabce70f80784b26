"""The WebSub callback (bot.websub): public, no session and no CSRF token (a hub calls it), and
strict instead: a random token per subscription in the path, intent verification answered only
for a request crier has outstanding, notifications acted on only when their HMAC signature
verifies.

    GET  /websub/{token}?hub.mode=…&hub.topic=…&hub.challenge=…&hub.lease_seconds=…
         the challenge as text/plain, or 404
    POST /websub/{token}  the topic's new content, signed (X-Hub-Signature): 202 (also when
         dropped: the spec's advice), 404 for no such subscription, 413 when too large
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

router = APIRouter(include_in_schema=False)

MAX_BODY = 16 * 1024 * 1024   # a fat ping carries the whole feed


@router.get("/websub/{token}")
def verify(request: Request, token: str):
    from bot import websub
    st = request.app.state.crier
    q = request.query_params
    answer = websub.verify_intent(st.store, token, q.get("hub.mode", ""), q.get("hub.topic", ""),
                                  q.get("hub.challenge", ""), q.get("hub.lease_seconds"),
                                  q.get("hub.reason"), st.now())
    if answer is None:
        return PlainTextResponse("no such subscription request", status_code=404)
    return PlainTextResponse(answer, headers={"Cache-Control": "no-store"})


@router.post("/websub/{token}")
async def notified(request: Request, token: str):
    from bot import websub
    st = request.app.state.crier
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > MAX_BODY:
        return Response(status_code=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return Response(status_code=413)
    status, _what = await run_in_threadpool(
        websub.notification, st.store, token, bytes(body),
        request.headers.get("x-hub-signature"), request.headers.get("link"), st.now())
    return Response(status_code=status)
