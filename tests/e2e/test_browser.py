"""A real browser (Debian's chromium, driven by Playwright) goes through the facility like a physicist."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_NOTEBOOK, gateway_for, save_json

pytestmark = pytest.mark.e2e
LAB_READY = "#jp-main-dock-panel"
# xterm.js draws on a canvas; in screen-reader mode it also keeps the rows as text in the page.
TERMINAL_SETTINGS = Path(
    ".jupyter/lab/user-settings/@jupyterlab/terminal-extension/plugin.jupyterlab-settings"
)
TERMINAL_TEXT = ".jp-Terminal .xterm-accessibility-tree"


def sign_in(page, facility, username: str) -> float:
    """Log in through the hub's login page and the provider's form; return the moment the form was sent."""
    page.goto(f"{facility.url}/hub/login")
    page.get_by_text("Sign in with ATLAS IAM").click()
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", facility.account(username).password)
    sent = time.perf_counter()
    page.click("#sign-in")
    return sent


def test_atlas_user_runs_gateway_cluster_from_a_tutorial(browser, facility, screenshots):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sent = sign_in(page, facility, "alice")
        page.wait_for_selector(LAB_READY, timeout=120_000)
        login_to_lab = time.perf_counter() - sent
        assert re.search(r"/user/alice/lab", page.url), page.url
        page.screenshot(path=screenshots / "01-jupyterlab.png")

        page.goto(f"{facility.url}/user/alice/lab/tree/tutorials/{E2E_NOTEBOOK}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
        # The kernel must be connected before the cell is run, or JupyterLab drops the execution.
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        page.screenshot(path=screenshots / "02-notebook.png")
        page.click(".jp-Notebook .jp-Cell .cm-content")
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        output = page.locator(".jp-OutputArea-output").filter(has_text="E2E workers=")
        output.wait_for(timeout=240_000)
        text = output.inner_text()
        page.screenshot(path=screenshots / "03-gateway-cluster.png")
        assert "E2E workers=2 total=499999500000" in text, text
        cluster_ready = float(re.search(r"cluster_ready_s=([\d.]+)", text).group(1))
        save_json(
            "timings.json",
            {"login_to_jupyterlab_s": round(login_to_lab, 2), "cluster_ready_s": cluster_ready},
        )
        print(
            f"login -> JupyterLab {login_to_lab:.1f} s; gateway cluster with 2 workers {cluster_ready:.1f} s"
        )
    finally:
        page.screenshot(path=screenshots / "alice-last.png")
        context.close()


def test_user_outside_allowed_groups_gets_403(browser, facility, screenshots):
    context = browser.new_context()
    page = context.new_page()
    try:
        statuses = []
        page.on(
            "response",
            lambda r: statuses.append((r.url, r.status)) if "/hub/oauth_callback" in r.url else None,
        )
        sign_in(page, facility, "oscar")
        page.wait_for_load_state("load")
        page.screenshot(path=screenshots / "04-outsider-403.png")
        assert statuses and statuses[-1][1] == 403, statuses
        assert "403" in page.content()
        # The page says which groups are allowed and signs out of the provider too: another account can sign in.
        assert page.locator("#allowed-groups code").all_inner_texts() == ["atlas"]
        page.click("#forbidden-logout")
        page.wait_for_url(f"{facility.url}/hub/login", timeout=60_000)
        sign_in(page, facility, "alice")
        page.wait_for_url(re.compile(r"/user/alice/"), timeout=120_000)
    finally:
        context.close()


def test_logout_ends_the_provider_session_so_another_account_can_sign_in(browser, facility, screenshots):
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, facility, "alice")
        page.wait_for_url(re.compile(r"/user/alice/"), timeout=120_000)
        page.goto(f"{facility.url}/hub/home")
        end_session = []
        page.on("request", lambda r: end_session.append(r.url) if "/session/end?" in r.url else None)
        page.click("#logout")
        # through the provider's end-session endpoint (with alice's ID token as hint) and back to the hub
        page.wait_for_url(f"{facility.url}/hub/login", timeout=60_000)
        assert end_session and "id_token_hint=" in end_session[0], end_session
        # The provider asks again (before, it signed alice in without a form): bob signs in.
        sign_in(page, facility, "bob")
        page.wait_for_url(re.compile(r"/user/bob/"), timeout=120_000)
        page.screenshot(path=screenshots / "10-second-account.png")
    finally:
        context.close()


def test_admin_page_only_for_admins(browser, facility, screenshots):
    admin = browser.new_context()
    try:
        page = admin.new_page()
        sign_in(page, facility, "ada")
        page.wait_for_url(re.compile(r"/(hub|user)/"), timeout=60_000)
        response = page.goto(f"{facility.url}/hub/admin")
        assert response.status == 200
        page.wait_for_selector("text=Add Users", timeout=30_000)
        page.screenshot(path=screenshots / "05-admin.png")
    finally:
        admin.close()
    user = browser.new_context()
    try:
        page = user.new_page()
        sign_in(page, facility, "bob")
        page.wait_for_url(re.compile(r"/(hub|user)/"), timeout=60_000)
        response = page.goto(f"{facility.url}/hub/admin")
        page.screenshot(path=screenshots / "06-user-no-admin.png")
        assert response.status == 403
    finally:
        user.close()


def test_dashboard_in_the_browser_only_for_its_owner(browser, facility, hub, screenshots):
    with gateway_for(facility, hub.user_token("alice")) as gateway, gateway.new_cluster() as cluster:
        cluster.scale(1)
        dashboard = f"{facility.url}/services/dask-gateway/clusters/{cluster.name}/status"
        owner = browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = owner.new_page()
            sign_in(page, facility, "alice")
            page.wait_for_url(re.compile(r"/(hub|user)/"), timeout=60_000)
            response = page.goto(dashboard)
            assert response.status == 200
            # The plots are drawn from the scheduler's websocket, proxied by the guard with the OAuth cookie.
            page.wait_for_selector(".bk-Figure, .bk-figure, canvas", timeout=60_000)
            page.screenshot(path=screenshots / "07-dashboard-owner.png")
        finally:
            owner.close()
        other = browser.new_context()
        try:
            page = other.new_page()
            sign_in(page, facility, "bob")
            page.wait_for_url(re.compile(r"/(hub|user)/"), timeout=60_000)
            response = page.goto(dashboard)
            page.screenshot(path=screenshots / "08-dashboard-other-user.png")
            assert response.status == 403
        finally:
            other.close()


IMAGE_VENV = Path("/opt/venv")  # images/notebook/Dockerfile


def test_terminal_finds_python_jupyter_and_physlite(browser, facility, screenshots):
    home = facility.state_dir / "homes" / "alice"
    (home / TERMINAL_SETTINGS).parent.mkdir(parents=True, exist_ok=True)
    (home / TERMINAL_SETTINGS).write_text(json.dumps({"screenReaderMode": True}))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, facility, "alice")
        page.wait_for_selector(LAB_READY, timeout=120_000)
        page.get_by_role("menuitem", name="File").click()
        page.locator('.lm-Menu-item[data-type="submenu"]').filter(has_text="New").first.click()
        page.get_by_role("menuitem", name="Terminal").click()
        terminal = page.locator(TERMINAL_TEXT)
        terminal.wait_for(timeout=60_000)
        page.wait_for_function(
            f"document.querySelector('{TERMINAL_TEXT}').innerText.trim().length > 0", timeout=60_000
        )
        page.locator(".jp-Terminal").click()
        page.keyboard.type('python -c "import physlite; print(physlite.__file__)"; which jupyter physlite\n')
        bin_dir = IMAGE_VENV / "bin"  # the server's container: the notebook image's environment
        expected = ["physlite/__init__.py", f"{bin_dir}/jupyter", f"{bin_dir}/physlite"]
        try:
            page.wait_for_function(
                f"(want => want.every(w => document.querySelector('{TERMINAL_TEXT}').innerText.includes(w)))"
                f"({json.dumps(expected)})",
                timeout=60_000,
            )
        finally:
            page.screenshot(path=screenshots / "09-terminal.png")
        text = terminal.inner_text()
        assert "command not found" not in text, text
    finally:
        context.close()
