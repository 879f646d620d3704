"""Web-app settings from the environment.

- ``ALPSDX_DATABASE_URL``: SQLAlchemy URL (default: SQLite file ./var/alpsdx.sqlite3)
- ``ALPSDX_SECRET_KEY``: signs session cookies and login CSRF tokens. Required unless
  ``ALPSDX_ENV=development``, where a fixed development key is allowed.
- ``ALPSDX_ENV``: ``production`` (default) or ``development``
- ``ALPSDX_UPLOAD_DIR``: where uploaded files are kept (default: ./var/uploads)
- ``ALPSDX_COOKIE_SECURE``: ``1``/``0``; default on, except in development. Browsers keep
  ``Secure`` cookies only over HTTPS (and on loopback), so set 0 only behind plain HTTP tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from alpsdx.errors import AuthError
from alpsdx.store.db import database_url

DEV_SECRET = "alpsdx-development-secret-do-not-use-in-production"


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: database_url(None))
    secret_key: str | None = None
    env: str = "production"
    upload_dir: Path = Path("var") / "uploads"
    cookie_secure: bool = True
    session_hours: float = 12.0
    migrate: bool = True  # run Alembic upgrade when the app starts

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ.get("ALPSDX_ENV", "production").strip().lower() or "production"
        s = cls(
            database_url=database_url(None),
            secret_key=os.environ.get("ALPSDX_SECRET_KEY") or None,
            env=env,
            upload_dir=Path(os.environ.get("ALPSDX_UPLOAD_DIR") or Path("var") / "uploads"),
            cookie_secure=_flag(os.environ.get("ALPSDX_COOKIE_SECURE"), env != "development"),
        )
        for k, v in overrides.items():
            setattr(s, k, v)
        return s

    @property
    def development(self) -> bool:
        return self.env == "development"

    def effective_secret(self) -> str:
        """The signing key; the development default is refused outside development."""
        key = self.secret_key
        if not key or key == DEV_SECRET:
            if self.development:
                return DEV_SECRET
            raise AuthError(
                "no secret key: set ALPSDX_SECRET_KEY to a long random string "
                "(or ALPSDX_ENV=development for a local trial)",
                field="ALPSDX_SECRET_KEY",
            )
        if len(key) < 16:
            raise AuthError("secret key too short", field="ALPSDX_SECRET_KEY", expected="at least 16 characters")
        return key
