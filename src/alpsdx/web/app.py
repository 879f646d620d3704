"""The FastAPI application factory.

``create_app(settings)`` opens the registry (migrating it when ``settings.migrate``),
mounts the pages, the JSON API, the static files and — when those modules exist — the
FHIR and CDS Hooks routers, and adds security headers and a privacy-safe request log
(method, route template, status, time; never query strings or patient identifiers).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alpsdx import __version__
from alpsdx.errors import AlpsdxError, AuthError, InputError, NotFoundError
from alpsdx.store import Registry, make_engine, upgrade
from alpsdx.web.auth import CSRFError, Forbidden, LoginRequired, principal
from alpsdx.web.settings import Settings

log = logging.getLogger("alpsdx.web")
HERE = Path(__file__).resolve().parent

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
# The self-contained report page carries its own print styles and inline images.
CSP_REPORT = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; "
              "base-uri 'none'; form-action 'none'")
# The interactive API docs page loads Swagger UI from a CDN; only that page may.
CSP_DOCS = ("default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
            "style-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "frame-ancestors 'none'")


class HeadersAndLogMiddleware:
    """Security headers on every response and one log line per request, as pure ASGI.

    (A ``BaseHTTPMiddleware`` did this before; it costs a task group and a response copy per
    request, a measurable share of a CDS Hooks call.) The log names the route template
    (``/patients/{patient_id}``), never the concrete path or query string.
    """

    def __init__(self, app: ASGIApp, cookie_secure: bool) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path: str = scope["path"]
        csp = CSP_DOCS if path == "/api/docs" else CSP_REPORT if path.endswith("/report") else CSP
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", ()))
                headers = MutableHeaders(raw=message["headers"])
                headers["Content-Security-Policy"] = csp
                headers["X-Frame-Options"] = "DENY"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                if not path.startswith("/static/") and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if self.cookie_secure:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            log.info("%s %s %d %.0fms", scope.get("method"), getattr(route, "path", "-"), status,
                     (time.perf_counter() - start) * 1000)


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.globals["version"] = __version__
    return t


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/cds-services") or request.url.path.startswith("/fhir")


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    tpl: Jinja2Templates = request.app.state.templates
    return tpl.TemplateResponse(request, "error.html", {"title": title, "message": message,
                                                        "user": getattr(request.state, "principal", None)},
                                status_code=status)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    secret = settings.effective_secret()
    engine = make_engine(settings.database_url)
    if settings.migrate:
        upgrade(engine)
    registry = Registry(engine, settings.upload_dir)

    app = FastAPI(
        title="alpsdx registry API",
        version=__version__,
        description=(
            "Decision support for autoimmune lymphoproliferative syndrome (ALPS): the patient "
            "registry's JSON API. Authenticate with HTTP Basic (user name and password) or with "
            "the browser session cookie plus an `X-CSRF-Token` header on writes. Patients are "
            "addressed by the registry's internal integer id."
        ),
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.secret = secret
    app.state.registry = registry
    app.state.engine = engine
    app.state.templates = templates()

    from alpsdx.web.security import (
        LoadShedMiddleware,
        LoginThrottle,
        LoginThrottleMiddleware,
        RegistryFailures,
    )

    # Added before the headers middleware, so they sit inside it and their 429s/503s carry the headers too.
    app.add_middleware(LoginThrottleMiddleware, throttle=LoginThrottle(store=RegistryFailures(registry)))
    app.add_middleware(LoadShedMiddleware)  # outside the throttle: shedding costs nothing

    # Outermost: security headers on every response (429/503 included) and one log line.
    app.add_middleware(HeadersAndLogMiddleware, cookie_secure=settings.cookie_secure)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _is_api(request):
            return JSONResponse({"error": "AuthError", "message": "authentication required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="alpsdx"'})
        nxt = request.url.path if request.method == "GET" else "/patients"
        return RedirectResponse(f"/login?next={nxt}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        msg = f"this needs the {exc.needed} role"
        if _is_api(request):
            return JSONResponse({"error": "AuthError", "message": msg}, status_code=403)
        return _error_page(request, 403, "Not allowed", msg)

    @app.exception_handler(CSRFError)
    async def _csrf(request: Request, exc: CSRFError) -> Response:
        msg = "missing or wrong CSRF token; reload the page and try again"
        if _is_api(request):
            return JSONResponse({"error": "AuthError", "message": msg}, status_code=403)
        return _error_page(request, 403, "Form expired", msg)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        if _is_api(request):
            return JSONResponse(exc.to_dict(), status_code=404)
        return _error_page(request, 404, "Not found", str(exc))

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> Response:
        if _is_api(request):
            return JSONResponse(exc.to_dict(), status_code=401)
        return _error_page(request, 401, "Not signed in", str(exc))

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> Response:
        if _is_api(request):
            return JSONResponse(exc.to_dict(), status_code=422)
        return _error_page(request, 422, "Invalid input", str(exc))

    @app.exception_handler(AlpsdxError)
    async def _alpsdx(request: Request, exc: AlpsdxError) -> Response:
        log.warning("request failed: %s", type(exc).__name__)
        if _is_api(request):
            return JSONResponse(exc.to_dict(), status_code=500)
        return _error_page(request, 500, "Error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        body = {"error": "InputError", "message": first.get("msg", "invalid request"), "field": loc or None,
                "value": None, "expected": None}
        if _is_api(request):
            return JSONResponse(body, status_code=422)
        return _error_page(request, 422, "Invalid input", f"{loc}: {body['message']}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or exc.status_code == 405:
            return JSONResponse({"error": "HTTPError", "message": str(exc.detail)}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        return _error_page(request, exc.status_code, "Error", str(exc.detail))

    # Routes are tried in order: the machine-facing ones (health checks, CDS Hooks, FHIR, the
    # API) come first, so a hook call is not matched against every page route before its own.
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _mount_optional(app)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    from alpsdx.web import pages

    app.include_router(pages.router)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Response:
        return RedirectResponse("/patients" if principal(request) else "/login", status_code=303)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    return app


def app_from_env() -> FastAPI:
    """The app for one of several worker processes (``alpsdx serve --workers N``).

    The parent process has already migrated the database and created the admin account;
    every worker reads the same environment, so they share the signing key and database.
    """
    return create_app(Settings.from_env(migrate=False))


def _mount_optional(app: FastAPI) -> None:
    """The JSON API, FHIR and CDS Hooks routers live in their own modules, written separately.

    A module that is absent is skipped; one that is present but fails to import fails loudly.
    """
    import importlib

    for name in ("alpsdx.interop.cds", "alpsdx.interop.facade", "alpsdx.web.cds", "alpsdx.web.fhir", "alpsdx.web.api"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        router = getattr(module, "router", None)
        if router is None:
            continue
        if name.endswith(".api") and not str(router.prefix).startswith("/api"):
            app.include_router(router, prefix="/api")
        else:
            app.include_router(router)
