"""A FastAPI application behind Palisade's gateway mode.

Written the way the FastAPI security tutorials write their endpoints
(`/api/data`, `/ai/generate`, a user listing for admins), but with no
accounts, passwords, tokens or rate limits of its own: Palisade, in front,
does all of that and forwards each request with the caller's identity.
The app trusts only the signed identity, the `X-Palisade-Identity` JWT,
verified against Palisade's JWKS; the plain `X-Palisade-User-Id`, ...
headers are shown by /whoami but never decide anything.

Environment:
    PALISADE_JWKS_URL   Palisade's key set, e.g.
                        http://127.0.0.1:8080/.well-known/jwks.json (required)
    PALISADE_ISSUER     the `iss` of Palisade's identities (default `palisade`)
    UPSTREAM_AUDIENCE   the `aud` of Palisade's identities: this app's base
                        URL exactly as configured in Palisade's
                        `gateway.upstream`, e.g. http://127.0.0.1:9000
                        (required)
    PALISADE_JWKS_REFRESH_COOLDOWN
                        the fewest seconds between two JWKS fetches caused by
                        an unknown `kid` (default 1, as Palisade itself)

Run (from the repository root):
    examples/fastapi-upstream/setup.sh      # prints the venv's python
    PALISADE_JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json \\
    UPSTREAM_AUDIENCE=http://127.0.0.1:9000 \\
    target/fastapi-upstream-venv/bin/uvicorn app:app \\
        --app-dir examples/fastapi-upstream --host 127.0.0.1 --port 9000

or `python examples/fastapi-upstream/app.py` (HOST and PORT from the
environment, default 127.0.0.1:9000). See README.md for Palisade's side.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("fastapi-upstream")


def _required_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} must be set (see the docstring of app.py)")
    return value


PALISADE_JWKS_URL = _required_env("PALISADE_JWKS_URL")
PALISADE_ISSUER = os.environ.get("PALISADE_ISSUER", "palisade")
UPSTREAM_AUDIENCE = _required_env("UPSTREAM_AUDIENCE")

IDENTITY_TYP = "palisade-identity+jwt"
LEEWAY_SECONDS = 5
ROLES = ("user", "editor", "admin", "super_admin")

# The key set is fetched once and kept for 5 minutes, as Palisade's
# `Cache-Control: max-age=300` asks; a token naming a `kid` not in it
# refetches the set at once (at most once per cooldown, so made-up `kid`s
# cannot make this app hammer Palisade). Keys are looked up in that cached
# set rather than in PyJWKClient's per-`kid` cache (`cache_keys=True`),
# which never expires: a key Palisade stops publishing stops verifying here
# within 5 minutes instead of at the next restart.
jwks_client = jwt.PyJWKClient(
    PALISADE_JWKS_URL,
    cache_jwk_set=True,
    lifespan=300,
    timeout=5,
    cooldown_duration=float(os.environ.get("PALISADE_JWKS_REFRESH_COOLDOWN", "1")),
)

app = FastAPI(title="FastAPI behind Palisade")


@dataclass(frozen=True)
class Identity:
    """The caller, as Palisade's signed identity names them."""

    user_id: str
    username: str
    role: str
    session_id: str
    auth_method: str
    claims: dict[str, Any] = field(repr=False, compare=False)


def _auth_method(amr: list[str]) -> str:
    # As Palisade names it in X-Palisade-Auth-Method: a recovery code
    # (`rc`) counts as the second factor.
    if "api_key" in amr:
        return "api_key"
    if "otp" in amr or "rc" in amr:
        return "otp"
    return "pwd"


def verify_identity(token: str, method: str, paths: tuple[str, ...]) -> Identity:
    """Verifies an `X-Palisade-Identity` JWT for a request of `method` to one
    of `paths` (the path as sent and as decoded). Raises 401 if it is not a
    valid identity from Palisade for this very request, 503 if Palisade's
    key set cannot be fetched. Blocking (it may fetch the JWKS): call it
    from a thread."""
    try:
        header = jwt.get_unverified_header(token)
        if header.get("typ") != IDENTITY_TYP:
            raise jwt.InvalidTokenError("not a Palisade identity (typ)")
        key = jwks_client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=UPSTREAM_AUDIENCE,
            issuer=PALISADE_ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
        )
    except jwt.PyJWKClientConnectionError as e:
        log.warning("cannot fetch Palisade's JWKS: %s", e)
        raise HTTPException(503, "Identity keys unavailable") from None
    except (jwt.InvalidTokenError, jwt.PyJWKClientError) as e:
        log.info("rejected identity: %s", e)
        raise HTTPException(401, "Invalid identity") from None
    # Bound to this request: an identity Palisade made for another method
    # or path is not accepted here.
    if claims.get("htm") != method or claims.get("htu") not in paths:
        raise HTTPException(401, "Identity is for another request")
    amr = claims.get("amr")
    fields = (claims.get("username"), claims.get("sid"))
    if (
        not all(isinstance(f, str) and f for f in fields)
        or claims.get("role") not in ROLES
        or not isinstance(amr, list)
        or not amr
        or not all(isinstance(m, str) for m in amr)
    ):
        raise HTTPException(401, "Invalid identity")
    return Identity(
        user_id=claims["sub"],
        username=claims["username"],
        role=claims["role"],
        session_id=claims["sid"],
        auth_method=_auth_method(amr),
        claims=claims,
    )


def _request_paths(conn: HTTPConnection) -> tuple[str, ...]:
    # `htu` is the path without the query. Starlette's `url.path` is
    # percent-decoded; the path as sent on the wire is accepted too.
    paths = (conn.url.path,)
    raw = conn.scope.get("raw_path")
    if raw:
        paths += (raw.decode("latin-1").split("?", 1)[0],)
    return paths


async def _identity_of(conn: HTTPConnection) -> Identity | None:
    tokens = conn.headers.getlist("x-palisade-identity")
    if not tokens:
        return None
    if len(tokens) > 1:
        raise HTTPException(401, "Invalid identity")
    # A WebSocket handshake is a GET.
    method = conn.scope.get("method", "GET")
    return await run_in_threadpool(verify_identity, tokens[0], method, _request_paths(conn))


async def optional_identity(request: Request) -> Identity | None:
    """The caller's verified identity; None for a request Palisade sent
    without one (an anonymous route). 401 for an identity that does not
    verify."""
    return await _identity_of(request)


async def identity(ident: Identity | None = Depends(optional_identity)) -> Identity:
    """The caller's verified identity; 401 without one."""
    if ident is None:
        raise HTTPException(401, "Not authenticated")
    return ident


def require_role(*roles: str):
    async def checker(user: Identity = Depends(identity)) -> Identity:
        if user.role not in roles:
            raise HTTPException(status_code=403, detail="Insufficient permissions")
        return user

    return checker


def headers_agree(conn: HTTPConnection, ident: Identity | None) -> bool | None:
    """Whether Palisade's plain identity headers say what the signed
    identity says (for /whoami; they never decide anything here)."""
    if ident is None:
        return None
    h = conn.headers
    return (
        h.get("x-palisade-user-id") == ident.user_id
        and h.get("x-palisade-username") == ident.username
        and h.get("x-palisade-role") == ident.role
        and h.get("x-palisade-session-id") == ident.session_id
        and h.get("x-palisade-auth-method") == ident.auth_method
    )


# --- Counting requests, and a header Palisade should strip ----------------

COUNTS: Counter[str] = Counter()
UNCOUNTED = {"/_count", "/_reset"}


class CountingMiddleware:
    """Counts every HTTP request and WebSocket handshake that reaches the
    app, per path, and adds `X-Powered-By: FastAPI` to every response.
    Pure ASGI (BaseHTTPMiddleware would buffer streamed responses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if scope["path"] not in UNCOUNTED:
            COUNTS[scope["path"]] += 1

        async def send_powered_by(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = list(message.get("headers", []))
                headers.append((b"x-powered-by", b"FastAPI"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_powered_by)


app.add_middleware(CountingMiddleware)


@app.get("/_count")
async def count():
    return {"total": sum(COUNTS.values()), "paths": dict(COUNTS)}


@app.post("/_reset")
async def reset():
    COUNTS.clear()
    return {"total": 0, "paths": {}}


# --- The endpoints -------------------------------------------------------


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/public/hello")
async def hello():
    return {"hello": "world"}


@app.get("/api/data")
async def get_data(user: Identity = Depends(identity)):
    return {"data": "limited", "status": "ok", "user": user.username}


class Prompt(BaseModel):
    prompt: str = Field(min_length=1, max_length=2000)


@app.post("/ai/generate")
async def generate(body: Prompt, user: Identity = Depends(identity)):
    return {"user": user.username, "output": "echo: " + body.prompt}


# This example has no database: a fixed list stands in for the accounts
# (which live in Palisade anyway).
USERS = [
    {"username": "alice", "role": "admin"},
    {"username": "bob", "role": "editor"},
    {"username": "carol", "role": "user"},
]


@app.get("/admin/users")
async def list_users(user: Identity = Depends(require_role("admin", "super_admin"))):
    return {"users": USERS, "seen_by": user.username}


def _describe(request: Request, ident: Identity | None) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return {
        "identity": ident.claims if ident else None,
        "identity_headers_agree": headers_agree(request, ident),
        "headers": headers,
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
    }


@app.get("/whoami")
@app.get("/app/whoami")
async def whoami(request: Request, ident: Identity | None = Depends(optional_identity)):
    return _describe(request, ident)


@app.api_route("/app/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def echo(request: Request, ident: Identity | None = Depends(optional_identity)):
    body_bytes = 0
    async for chunk in request.stream():
        body_bytes += len(chunk)
    return {**_describe(request, ident), "body_bytes": body_bytes}


@app.post("/upload")
async def upload(request: Request):
    # Counted as it arrives; the body is never held in memory.
    n = 0
    async for chunk in request.stream():
        n += len(chunk)
    return {"bytes": n}


CHUNK = b"x" * (64 * 1024)


@app.get("/download")
async def download(size: int = Query(1024 * 1024, ge=0, le=2 * 1024**3)):
    async def body():
        left = size
        while left >= len(CHUNK):
            yield CHUNK
            left -= len(CHUNK)
        if left:
            yield CHUNK[:left]

    return StreamingResponse(
        body(),
        media_type="application/octet-stream",
        headers={"Content-Length": str(size)},
    )


@app.get("/slow")
async def slow(seconds: float = Query(5.0, ge=0, le=60)):
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/stall")
async def stall(seconds: float = Query(5.0, ge=0, le=60)):
    """Sends the head and 1 KiB at once, then nothing for `seconds`, then
    1 KiB more: a response whose body stalls midway."""

    async def body():
        yield b"x" * 1024
        await asyncio.sleep(seconds)
        yield b"y" * 1024

    return StreamingResponse(body(), media_type="application/octet-stream")


@app.get("/own-headers")
async def own_headers():
    return JSONResponse(
        {"ok": True},
        headers={
            "X-Frame-Options": "SAMEORIGIN",
            "Content-Security-Policy": "default-src 'self'",
        },
    )


@app.websocket("/ws/echo")
async def ws_echo(websocket: WebSocket):
    try:
        ident = await _identity_of(websocket)
    except HTTPException:
        # Refused before the upgrade: the client gets a 403.
        await websocket.close(code=1008)
        return
    await websocket.accept()
    await websocket.send_json({"hello": ident.username if ident else "anonymous"})
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        elif message.get("bytes") is not None:
            await websocket.send_bytes(message["bytes"])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "9000")),
        log_level="warning",
        server_header=True,
    )
