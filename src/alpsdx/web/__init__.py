"""The clinician web app: server-rendered pages (Jinja2), a JSON API under ``/api/``, auth.

``create_app(settings)`` builds the FastAPI application; ``Settings.from_env()`` reads
``ALPSDX_DATABASE_URL``, ``ALPSDX_SECRET_KEY``, ``ALPSDX_ENV`` and friends.
"""

from __future__ import annotations

from alpsdx.web.settings import Settings

__all__ = ["Settings", "create_app"]


def create_app(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """Build the app (imported lazily so ``alpsdx.web.settings`` stays cheap)."""
    from alpsdx.web.app import create_app as _create

    return _create(settings)
