"""Real-browser tests: Playwright (pytest-playwright) driving Debian's Chromium against
``alpsdx serve`` started as a subprocess on loopback. Screenshots go to artifacts/browser/
(gitignored). Skips cleanly when Chromium or pytest-playwright is missing.

Set ALPSDX_UPDATE_SCREENSHOT=1 to also refresh docs/screenshot-patient.png.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytest_playwright")
from playwright.sync_api import Browser, Page, expect
from webtools import PASSWORDS

# One server per worker: keep the module's tests together under xdist.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ALPSDX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO / "artifacts" / "browser"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's Chromium (not a downloaded build); skip when it is not installed."""
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "accept_downloads": True, "viewport": {"width": 1360, "height": 900}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``alpsdx serve`` on a free loopback port over a fresh SQLite registry."""
    tmp = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{tmp / 'registry.sqlite3'}"
    from alpsdx.store import Registry, make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    reg = Registry(engine, tmp / "uploads")
    for role in ("clinician", "viewer"):
        reg.create_user(role, PASSWORDS[role], role)
    from alpsdx.model import case_from_dict

    reg.create_patient(case_from_dict({"id": "browser-view", "sex": "male", "age_years": 12}))
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "ALPSDX_DATABASE_URL": url, "ALPSDX_ADMIN_PASSWORD": PASSWORDS["admin"],
           "ALPSDX_UPLOAD_DIR": str(tmp / "uploads"), "ALPSDX_SECRET_KEY": "b" * 40}
    env.pop("ALPSDX_ENV", None)  # production settings: Secure cookies (Chromium keeps them on loopback)
    log = (tmp / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "alpsdx.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("alpsdx serve did not start:\n" + (tmp / "server.log").read_text()[-3000:])
        time.sleep(0.3)
    try:
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def shot(page: Page, name: str, full: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    return path


def sign_in(page: Page, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    expect(page.get_by_test_id("who")).to_contain_text(user)


def add_observation(page: Page, analyte: str, value: str, unit: str, date: str) -> None:
    form = page.locator("#form-observation")
    form.locator("select[name=analyte]").select_option(analyte)
    form.locator("input[name=value]").fill(value)
    form.locator("input[name=unit]").fill(unit)
    form.locator("input[name=date]").fill(date)
    form.locator("button[type=submit]").click()
    expect(page.locator("#notice")).to_contain_text("Observation added")


def test_logged_out_user_is_redirected(page: Page, server: str) -> None:
    page.goto(f"{server}/patients")
    expect(page).to_have_url(re.compile(r"/login\?next=/patients$"))
    expect(page.locator("h1")).to_have_text("Sign in")


def test_openapi_is_served(server: str) -> None:
    with urllib.request.urlopen(f"{server}/openapi.json", timeout=10) as r:
        assert b'"openapi"' in r.read()


def test_clinician_workflow(page: Page, server: str, fcs_bytes: bytes, tmp_path: Path) -> None:
    sign_in(page, server, "clinician")
    page.click("text=New patient")
    page.fill("input[name=id]", "browser-1")
    page.select_option("select[name=sex]", "female")
    page.fill("input[name=age_years]", "30")
    page.click("#new-patient button[type=submit]")
    expect(page.locator("#patient-id")).to_have_text("browser-1")
    category = page.locator("#category")
    expect(category).to_have_attribute("data-category", "indeterminate")

    f = page.locator("#form-findings")
    f.locator("select[name='lymphadenopathy.present']").select_option("yes")
    f.locator("input[name='lymphadenopathy.onset']").fill("2024-01-01")
    f.locator("input[name='lymphadenopathy.duration_months']").fill("12")
    f.locator("select[name='lymphadenopathy.malignancy_excluded']").select_option("yes")
    f.locator("select[name='lymphadenopathy.infection_excluded']").select_option("yes")
    f.locator("button[type=submit]").click()
    expect(page.locator("#notice")).to_contain_text("Findings recorded")

    add_observation(page, "dnt_pct_lymphocytes", "3.0", "%", "2025-05-01")
    add_observation(page, "lymphocytes_abs", "2.0", "10*9/L", "2025-05-01")
    expect(category).to_have_attribute("data-category", "indeterminate")
    add_observation(page, "sfasl", "500", "pg/mL", "2025-05-01")
    expect(category).to_have_attribute("data-category", "probable")
    shot(page, "01-probable")

    v = page.locator("#form-variant")
    v.locator("input[name=gene]").fill("FAS")
    v.locator("input[name=hgvs_c]").fill("NM_000043.6:c.779A>G")
    v.locator("input[name=hgvs_p]").fill("p.Asp260Gly")
    v.locator("select[name=origin]").select_option("germline")
    v.locator("select[name=classification]").select_option("pathogenic")
    v.locator("button[type=submit]").click()
    expect(category).to_have_attribute("data-category", "definitive")
    expect(page.locator("#subtype")).to_have_text("ALPS-FAS")
    expect(page.locator("#variants")).to_contain_text("Death domain")

    # A field error is shown next to its field, and the value typed is kept.
    o = page.locator("#form-observation")
    o.locator("select[name=analyte]").select_option("igg")
    o.locator("input[name=value]").fill("1200")
    o.locator("input[name=unit]").fill("kg")
    o.locator("button[type=submit]").click()
    expect(page.locator("#form-observation .field-error[data-field=unit]")).to_be_visible()
    expect(page.locator("#form-observation input[name=unit]")).to_have_value("kg")

    fcs = tmp_path / "sample.fcs"
    fcs.write_bytes(fcs_bytes)
    page.locator("#form-upload-fcs input[type=file]").set_input_files(str(fcs))
    # The DNT pipeline runs server-side (seconds): wait for the page that reports it.
    with page.expect_navigation(timeout=180_000):
        page.locator("#form-upload-fcs button[type=submit]").click(no_wait_after=True)
    expect(page.locator("#notice")).to_contain_text("FCS analysed")
    gate = page.locator("#dnt img.gateplot").first
    expect(gate).to_be_visible()
    assert gate.evaluate("img => img.complete && img.naturalWidth > 100")
    trend = page.locator("#trends img").first
    trend.scroll_into_view_if_needed()
    expect(trend).to_be_visible()
    page.wait_for_function("() => [...document.querySelectorAll('#trends img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=120_000)
    shot(page, "02-definitive-with-fcs")
    if os.environ.get("ALPSDX_UPDATE_SCREENSHOT") == "1":
        page.set_viewport_size({"width": 1360, "height": 1500})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(REPO / "docs" / "screenshot-patient.png"), full_page=False)

    with page.expect_download(timeout=180_000) as dl:
        page.click("#report-pdf")
    pdf = tmp_path / "report.pdf"
    dl.value.save_as(pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "browser-1" in text and "DEFINITIVE" in text


def test_viewer_cannot_edit(browser: Browser, server: str) -> None:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, server, "viewer")
        page.goto(f"{server}/patients?q=browser-view")
        page.locator("#patients a", has_text="browser-view").click()
        expect(page.locator("#criteria")).to_be_visible()
        assert page.locator("#forms").count() == 0
        assert page.locator("form[action$='/observations']").count() == 0
        expect(page.locator("header nav")).not_to_contain_text("New patient")
        page.goto(f"{server}/patients/new")
        expect(page.locator("h1")).to_have_text("Not allowed")
        expect(page.locator(".error-message")).to_contain_text("clinician role")
        shot(page, "03-viewer-forbidden", full=False)
    finally:
        context.close()
