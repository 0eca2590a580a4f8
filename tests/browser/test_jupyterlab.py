"""Opt-in browser check (``make test-browser``): the notebooks work in JupyterLab as a person sees them.

Starts JupyterLab headless on 127.0.0.1 over a temporary copy of ``notebooks/`` (so
autosave never touches the committed notebooks), opens ``00_quickstart`` and
``01_speculative_sampling`` in headless Chromium driven by Selenium, runs all cells, and
asserts that the highlighted-token HTML (00) and the widget's figure (01) appear.
Screenshots go to ``runs/browser/``. Skips with a clear message when Chromium, its
driver, Selenium or JupyterLab is missing, or when PASS_REF_BROWSER is not set.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "runs" / "browser"


def _missing() -> str | None:
    if not os.environ.get("PASS_REF_BROWSER"):
        return "opt-in: run `make test-browser` (sets PASS_REF_BROWSER=1)"
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: apt-get install chromium chromium-driver)"
    for module in ("selenium", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"Python package {module} is missing (pip install -r requirements-lab.txt)"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work / 'notebooks'}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False", "--allow-root",
    ]
    log = open(work / "lab.log", "w")
    # Render every cell (no windowing): the explorer's figure lives in the last cells, and a windowed
    # notebook does not render cells out of view in a headless browser.
    settings = tmp_path_factory.mktemp("lab-settings")
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings))
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.terminate()
                pytest.fail(f"JupyterLab did not start; log: {(work / 'lab.log').read_text()[-2000:]}")
            time.sleep(1)
    yield url, token
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def _run_all(browser, url: str, token: str, name: str, timeout: float = 600):
    """Open a notebook, wait for its kernel, run all cells and wait until the kernel is idle again."""
    browser.get(f"{url}/lab/tree/{name}?token={token}")
    deadline = time.time() + 120
    while not browser.execute_script(
        "const app = window.jupyterapp; if (!app) return false;"
        "const w = app.shell.currentWidget; return !!(w && w.context && w.context.path === arguments[0]"
        " && w.content && w.content.widgets.length > 0 && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle');",
        name,  # the notebook just opened, not the previous tab (whose idle kernel would let run-all hit the wrong one)
    ):
        assert time.time() < deadline, f"{name}: the notebook or its kernel did not come up"
        time.sleep(1)
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    time.sleep(3)
    deadline = time.time() + timeout
    while browser.execute_script(
        "const w = window.jupyterapp.shell.currentWidget;"
        "const busy = w.sessionContext.session.kernel.status !== 'idle';"
        "const pending = [...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));"
        "return busy || pending;"
    ):
        assert time.time() < deadline, f"{name}: cells still running after {timeout} s"
        time.sleep(2)
    ran = browser.execute_script(
        "const w = window.jupyterapp.shell.currentWidget;"
        "return w.context.path === arguments[0] && w.content.widgets.every(c => c.model.type !== 'code' || c.model.executionCount);",
        name,
    )
    assert ran, f"{name}: run-all did not execute every code cell of this notebook"
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".filter(o => o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'"
        " && o.textContent.includes('Traceback')).length;"
    )
    assert errors == 0, f"{name}: a cell raised an error in JupyterLab"


def _screenshot(browser, element, path: Path) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(1)
    browser.save_screenshot(str(path))


def test_quickstart_shows_highlighted_tokens(lab, browser):
    from selenium.webdriver.common.by import By

    url, token = lab
    _run_all(browser, url, token, "00_quickstart.ipynb")
    spans = browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output span[class^='pass-']")
    assert spans, "no highlighted token spans (class pass-*) were rendered"
    kinds = {s.get_attribute("class") for s in spans}
    assert "pass-exact" in kinds
    _screenshot(browser, spans[0], SHOTS / "00_quickstart.png")


def test_speculative_sampling_widget_draws_its_figure(lab, browser):
    from selenium.webdriver.common.by import By

    url, token = lab
    _run_all(browser, url, token, "01_speculative_sampling.ipynb")
    browser.execute_script("window.jupyterapp.commands.execute('notebook:move-cursor-to-end');")  # render the last cells
    deadline = time.time() + 90
    images = []
    while not images and time.time() < deadline:
        # JupyterLab renders only the cells in view: keep scrolling the notebook to its end.
        browser.execute_script(
            "for (const o of document.querySelectorAll('.jp-WindowedPanel-outer, .jp-Notebook')) {"
            " if (o.offsetParent) { o.scrollTop = o.scrollHeight; } }"
        )
        images = browser.find_elements(By.CSS_SELECTOR, ".widget-interact img, .jupyter-widgets img")
        time.sleep(1)
    if not images:
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "01_speculative_sampling-FAILED.png"))
    assert images, "the ipywidgets explorer did not render its figure (see runs/browser/*-FAILED.png)"
    sliders = browser.find_elements(By.CSS_SELECTOR, ".widget-interact .widget-slider, .widget-interact .jupyter-widgets")
    assert sliders, "the explorer's sliders are missing"
    _screenshot(browser, images[0], SHOTS / "01_speculative_sampling.png")
