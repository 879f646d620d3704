"""A small standalone app: the FHIR facade and the CDS Hooks service over one registry.

The clinician web app (``alpsdx.web.app``) mounts the same two routers; this factory is for
deployments that run the CDS service on its own, and for tests and benchmarks that need a
real HTTP server without the pages.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from alpsdx import __version__
from alpsdx.errors import AuthError
from alpsdx.interop import cds, facade
from alpsdx.store import Registry
from alpsdx.web.auth import CSRFError, Forbidden, LoginRequired

__all__ = ["create_interop_app"]


def create_interop_app(registry: Registry, secret: str, cds_config: cds.CDSConfig | None = None) -> FastAPI:
    """FastAPI app with ``/fhir`` (facade) and ``/cds-services`` (CDS Hooks) over ``registry``."""
    if len(secret) < 16:
        raise AuthError("secret key too short", field="secret", expected="at least 16 characters")
    app = FastAPI(title="alpsdx FHIR facade and CDS Hooks service", version=__version__,
                  docs_url=None, redoc_url=None)
    app.state.registry = registry
    app.state.secret = secret
    if cds_config is not None:
        app.state.cds_config = cds_config

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return JSONResponse({"error": "AuthError", "message": "authentication required"}, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="alpsdx", Bearer'})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return JSONResponse({"error": "AuthError", "message": f"this needs the {exc.needed} role"}, status_code=403)

    @app.exception_handler(CSRFError)
    async def _csrf(request: Request, exc: CSRFError) -> Response:
        return JSONResponse({"error": "AuthError", "message": "missing or wrong CSRF token"}, status_code=403)

    app.include_router(facade.router)
    app.include_router(cds.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    return app
