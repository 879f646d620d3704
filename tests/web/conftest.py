"""A real app over a throwaway SQLite registry, with one user per role and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from webtools import PASSWORDS, Session, login

from alpsdx.web.app import create_app
from alpsdx.web.settings import Settings


def make_settings(tmp: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp / 'registry.sqlite3'}", secret_key="t" * 40, env="production",
                    upload_dir=tmp / "uploads", cookie_secure=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("web")
    application = create_app(make_settings(tmp))
    reg = application.state.registry
    for role, pw in PASSWORDS.items():
        reg.create_user(role, pw, role)
    return application


@pytest.fixture(scope="module")
def as_role(app) -> Iterator[Callable[[str | None], Session]]:  # type: ignore[no-untyped-def]
    """``as_role("clinician")`` -> a logged-in session (HTTPS base URL: cookies are Secure)."""
    made: dict[str | None, Session] = {}
    clients: list[TestClient] = []

    def get(role: str | None) -> Session:
        if role not in made:
            c = TestClient(app, base_url="https://testserver")
            clients.append(c)
            csrf = login(c, role, PASSWORDS[role]) if role else None
            made[role] = Session(c, csrf)
        return made[role]

    yield get
    for c in clients:
        c.close()




@pytest.fixture(scope="session")
def fcs_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small synthetic FCS 3.1 file (TCRab panel, 3 % DNT of lymphocytes) made by alpsdx.flow."""
    from alpsdx.flow.synthetic import SyntheticSpec, write_synthetic

    path = tmp_path_factory.mktemp("fcs") / "sample.fcs"
    write_synthetic(path, SyntheticSpec(n_events=20_000, dnt_pct_lymphocytes=3.0, seed=7))
    return path.read_bytes()


@pytest.fixture(scope="session")
def vcf_bytes() -> bytes:
    """The genetics fixture made by the project (VEP CSQ, one pathogenic FAS death-domain call)."""
    return (Path(__file__).resolve().parents[1] / "data" / "genetics" / "germline_dd_missense.vep.vcf").read_bytes()
