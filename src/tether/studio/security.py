"""Studio's guards: token login and sessions, CSRF tokens, host and origin checks, response headers.

Runs in the Studio and `tether serve` servers (ASGI middleware and helpers). On loopback no
login is needed; on any other address every page and API call needs a token
(`TETHER_API_TOKEN` or a token file), given once in the login form (a session cookie follows)
or as `Authorization: Bearer <token>`. Every request gets an identity, recorded as
`answered_by` when it answers a human task.
"""

from __future__ import annotations

import asyncio
import getpass
import hmac
import ipaddress
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import ConfigError

SESSION_COOKIE = "tether_session"
CSRF_COOKIE = "tether_csrf"
CSRF_FIELD = "csrf"
OPEN_PATHS = ("/login", "/static/")
"""Reachable without a session: the login form and the stylesheet it needs (nothing else)."""
SESSION_TTL = 12 * 3600.0
"""Seconds a login lasts (then the login form again)."""
WRONG_TOKEN_DELAY = 0.5
"""Seconds every token check waits after a wrong token, for all clients together."""
IDENTITY = "tether_identity"
"""Key of the request's authenticated identity in the ASGI scope's state."""
DEFAULT_TOKEN_NAME = "token"

_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                                 b"data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                 b"form-action 'self'"),
]
_NAME = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


def read_tokens(text: str, *, source: str) -> dict[str, str]:
    """Named tokens from a token file: one per line, `NAME:TOKEN` or just `TOKEN`.

    A token's name is what `answered_by` records for answers sent with it (`token:NAME`);
    a line without a name is called "token". Blank lines and `#` comments are skipped.

    Raises:
        ConfigError: The file holds no token, a name twice, or a token shorter than 12 characters.
    """
    tokens: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, secret = line.partition(":")
        if not sep or not _NAME.fullmatch(name):
            name, secret = DEFAULT_TOKEN_NAME, line
        if len(secret) < 12:  # never quote it: the message goes to logs
            raise ConfigError(f"{source} line {n}: the token is shorter than 12 characters; use a long random "
                              "one, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        if name in tokens:
            raise ConfigError(f"{source} line {n}: the token name {name!r} is used twice; give each token "
                              "its own name (NAME:TOKEN)")
        tokens[name] = secret
    if not tokens:
        raise ConfigError(f"{source} holds no token; write one per line (NAME:TOKEN or TOKEN)")
    return tokens


def load_tokens(token: str | None, token_file: str | Path | None) -> dict[str, str]:
    """The tokens a server accepts: the token file's, else the single `token` (named "token").

    Raises:
        ConfigError: The token file cannot be read or is malformed.
    """
    if token_file is not None:
        try:
            text = Path(token_file).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {str(token_file)!r}: {exc.strerror}") from None
        return read_tokens(text, source=f"token file {str(token_file)!r}")
    return {DEFAULT_TOKEN_NAME: token} if token else {}


@dataclass
class _Session:
    name: str
    expires: float


class Sessions:
    """The accepted tokens and the login sessions opened with them (in memory: a restart logs everyone out).

    Token checks go one at a time, and after a wrong token every check waits
    `wrong_token_delay` seconds: guesses sent in parallel are answered no faster than in
    sequence (at most one wrong guess per delay, whoever sends them).

    Args:
        tokens: The accepted token, or named tokens (name -> token); None or empty: no login.
        ttl: Seconds a login session lasts.
        wrong_token_delay: Seconds of pause after each wrong token.
        clock: Monotonic seconds (tests move time forward).
    """

    def __init__(self, tokens: str | Mapping[str, str] | None, *, ttl: float = SESSION_TTL,
                 wrong_token_delay: float = WRONG_TOKEN_DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(tokens, str):
            tokens = {DEFAULT_TOKEN_NAME: tokens}
        self.tokens = dict(tokens or {})
        self.ttl = ttl
        self.wrong_token_delay = wrong_token_delay
        self.clock = clock
        self._sessions: dict[str, _Session] = {}
        self._gate: asyncio.Lock | None = None
        self._not_before = 0.0

    @property
    def token(self) -> str | None:
        """A token when login is required, else None."""
        return next(iter(self.tokens.values()), None)

    def match(self, given: str) -> str | None:
        """The name of the token `given` is (constant-time, every token compared), else None."""
        found = None
        for name, secret in self.tokens.items():
            if hmac.compare_digest(given.encode(), secret.encode()):
                found = name
        return found

    def check_token(self, given: str) -> bool:
        """True when `given` is an accepted token (no delay: prefer `verify` on the request path)."""
        return self.match(given) is not None

    async def verify(self, given: str) -> str | None:
        """The name of the token `given` is, or None; one check at a time, paused after wrong ones."""
        if self._gate is None:
            self._gate = asyncio.Lock()
        async with self._gate:
            wait = self._not_before - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            name = self.match(given)
            if name is None:
                self._not_before = time.monotonic() + self.wrong_token_delay
            return name

    def open(self, name: str = DEFAULT_TOKEN_NAME) -> str:
        """A new session id for someone who gave the token called `name`."""
        self._forget_expired()
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = _Session(name, self.clock() + self.ttl)
        return sid

    def close(self, sid: str | None) -> None:
        """Forget a session."""
        self._sessions.pop(sid or "", None)

    def name(self, sid: str | None) -> str | None:
        """The token name of a live session opened here, else None (expired sessions are forgotten)."""
        if not sid:
            return None
        found = None
        for key, session in list(self._sessions.items()):
            if hmac.compare_digest(sid, key):
                found = session
        if found is None:
            return None
        if found.expires <= self.clock():
            self.close(sid)
            return None
        return found.name

    def valid(self, sid: str | None) -> bool:
        """True for a live session opened here."""
        return self.name(sid) is not None

    def _forget_expired(self) -> None:
        now = self.clock()
        for sid in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[sid]


def identity(request: Request) -> str:
    """Who sent `request`, as authenticated by the guard: `token:NAME`, `studio:NAME`, `local:USER`."""
    found = request.scope.get("state", {}).get(IDENTITY)
    return str(found) if found else "anonymous"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """Refuses what Studio and the HTTP API must not serve, and adds headers to what they serve.

    - Requests whose Host is not loopback when serving on loopback only (DNS rebinding).
    - Unsafe methods from another origin (`Origin` / `Sec-Fetch-Site`): cross-site request forgery.
    - Without a valid session or bearer token when a token is set: pages redirect to the
      login form, API calls get 401 (after the shared wrong-token pause).
    - Every dynamic response gets `Cache-Control: no-store` (pages carry decrypted data)
      and a strict Content-Security-Policy.

    Each request let through carries its identity (see `identity`).
    """

    def __init__(self, app: ASGIApp, *, sessions: Sessions, loopback_only: bool) -> None:
        self.app = app
        self.sessions = sessions
        self.loopback_only = loopback_only
        self.anonymous = f"local:{_local_user()}" if loopback_only else "anonymous"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        who = None
        if refusal is None:
            who, refusal = await self._authenticate(request)
        if refusal is not None:
            await _with_headers(refusal, scope)(scope, receive, send)
            return
        scope.setdefault("state", {})[IDENTITY] = who
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
            return PlainTextResponse(f"refused: this server listens on loopback only and this request names "
                                     f"host {host!r}; open it as http://127.0.0.1:PORT", status_code=403)
        if request.method not in ("GET", "HEAD", "OPTIONS") and _cross_site(request):
            return PlainTextResponse("refused: a request from another site (cross-site request forgery "
                                     "protection)", status_code=403)
        return None

    async def _authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        if not self.sessions.tokens:
            return self.anonymous, None
        if _is_open(request.url.path):
            return None, None
        name = self.sessions.name(request.cookies.get(SESSION_COOKIE))
        if name is not None:
            return f"studio:{name}", None
        given = request.headers.get("authorization", "")
        if given.startswith("Bearer "):
            name = await self.sessions.verify(given[7:])
            if name is not None:
                return f"token:{name}", None
        if request.url.path.startswith("/api/"):
            return None, JSONResponse({"error": "missing or wrong token: log in to Studio or send "
                                       "'Authorization: Bearer <TETHER_API_TOKEN>'"}, status_code=401,
                                      headers={"WWW-Authenticate": "Bearer"})
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return None, RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return None, PlainTextResponse("refused: log in first (/login)", status_code=401)


def _with_headers(response: Response, scope: Scope) -> Response:
    for key, value in _HEADERS:
        response.headers[key.decode()] = value.decode()
    response.headers["cache-control"] = "no-store"
    return response


def _is_open(path: str) -> bool:
    return path == "/login" or path.startswith("/static/")


def _loopback_host(host: str) -> bool:
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
