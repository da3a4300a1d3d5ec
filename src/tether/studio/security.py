"""Studio's guards: token login and sessions, CSRF tokens, host and origin checks, response headers.

Runs in the Studio server (ASGI middleware and helpers). On loopback no login is needed;
on any other address every page and API call needs the token (`TETHER_API_TOKEN`), given
once in the login form (a session cookie follows) or as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "tether_session"
CSRF_COOKIE = "tether_csrf"
CSRF_FIELD = "csrf"
OPEN_PATHS = ("/login", "/static/")
"""Reachable without a session: the login form and the stylesheet it needs (nothing else)."""

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                                 b"data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                 b"form-action 'self'"),
]


class Sessions:
    """Sessions opened by the login form, kept in memory (a restart logs everyone out)."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self._ids: set[str] = set()

    def check_token(self, given: str) -> bool:
        """True when `given` is the token (constant-time)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def open(self) -> str:
        """A new session id."""
        sid = secrets.token_urlsafe(32)
        self._ids.add(sid)
        return sid

    def close(self, sid: str | None) -> None:
        """Forget a session."""
        self._ids.discard(sid or "")

    def valid(self, sid: str | None) -> bool:
        """True for a session opened here."""
        return bool(sid) and any(hmac.compare_digest(sid or "", s) for s in self._ids)


class Guard:
    """Refuses what Studio must not serve and adds headers to what it serves.

    - Requests whose Host is not loopback when Studio listens on loopback only (DNS rebinding).
    - Unsafe methods from another origin (`Origin` / `Sec-Fetch-Site`): cross-site request forgery.
    - Without a valid session or bearer token when a token is set: pages redirect to the
      login form, API calls get 401.
    - Every dynamic response gets `Cache-Control: no-store` (pages carry decrypted data)
      and a strict Content-Security-Policy.
    """

    def __init__(self, app: ASGIApp, *, sessions: Sessions, loopback_only: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await _with_headers(refusal, scope)(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                headers += _HEADERS
                headers.append((b"cache-control", b"public, max-age=300" if static else b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if self.loopback_only and not _loopback_host(host):
            return PlainTextResponse(f"refused: Studio listens on loopback only and this request names host "
                                     f"{host!r}; open it as http://127.0.0.1:PORT", status_code=403)
        if request.method not in ("GET", "HEAD", "OPTIONS") and _cross_site(request):
            return PlainTextResponse("refused: a request from another site (cross-site request forgery "
                                     "protection)", status_code=403)
        if self.sessions.token is None or _is_open(request.url.path):
            return None
        if self.sessions.valid(request.cookies.get(SESSION_COOKIE)) or self._bearer_ok(request):
            return None
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "missing or wrong token: log in to Studio or send 'Authorization: "
                                 "Bearer <TETHER_API_TOKEN>'"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return PlainTextResponse("refused: log in first (/login)", status_code=401)

    def _bearer_ok(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return given.startswith("Bearer ") and self.sessions.check_token(given[7:])


def _with_headers(response: Response, scope: Scope) -> Response:
    for key, value in _HEADERS:
        response.headers[key.decode()] = value.decode()
    response.headers["cache-control"] = "no-store"
    return response


def _is_open(path: str) -> bool:
    return path == "/login" or path.startswith("/static/")


def _loopback_host(host: str) -> bool:
    from tether.studio.api import is_loopback

    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return is_loopback(name)


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc != request.headers.get("host", "")


# ---- CSRF tokens (double submit: cookie + hidden field) ----------------------------------------


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's CSRF token, and whether it is new (then it must be set as a cookie)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    """Send the CSRF cookie (readable by nobody else: SameSite=Strict, HttpOnly)."""
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/")


def csrf_ok(request: Request, form: FormData) -> bool:
    """True when the form's hidden CSRF field matches the browser's CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    field = form.get(CSRF_FIELD, "")
    return bool(cookie) and isinstance(field, str) and hmac.compare_digest(cookie.encode(), field.encode())


def safe_next(target: str | None, default: str = "/runs") -> str:
    """A same-site path to return to after login (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def form_dict(form: FormData, *, skip: Iterable[str] = (CSRF_FIELD,)) -> dict[str, str]:
    """A submitted form as a plain dict of strings (files ignored)."""
    skipped = set(skip)
    return {k: v for k, v in form.items() if isinstance(v, str) and k not in skipped}
