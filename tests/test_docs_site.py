"""The documentation site (docs/): it builds with warnings as errors, and in a real headless
browser its equations render (offline MathJax) and its search finds ``ManualBPTT``.

Needs the ``docs`` extra (``pip install -e ".[docs]"``) and Chromium (Debian:
``apt-get install chromium``). Without them the tests are skipped, except where the environment
variable ``CI`` is set: there a missing one fails them. ``RNN_JAX_DOCS_BUILD_DIR=DIR`` reuses a
site already built into DIR (``python docs/build.py --out DIR``) instead of building one;
``RNN_JAX_CHROMIUM`` names the browser's executable.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _missing(reason: str) -> None:
    """Skip, or fail under CI, where the docs test must always run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the docs site test must run)")
    pytest.skip(reason)


def _need_module(name: str) -> None:
    if os.environ.get("CI"):
        try:
            importlib.import_module(name)
        except ImportError:
            _missing(f"{name} is not installed: pip install -e '.[docs]'")
    else:
        pytest.importorskip(name, reason=f"{name} is not installed: pip install -e '.[docs]'")


def _chromium() -> str:
    explicit = os.environ.get("RNN_JAX_CHROMIUM")
    if explicit:
        return explicit
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    _missing("no Chromium found (apt-get install chromium, or set RNN_JAX_CHROMIUM)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: RNN_JAX_DOCS_BUILD_DIR if given, else one fresh build for this module."""
    given = os.environ.get("RNN_JAX_DOCS_BUILD_DIR")
    if given and (Path(given) / "index.html").is_file():
        return Path(given)
    for module in ("sphinx", "myst_nb", "myst_parser", "furo", "sphinx-mathjax-offline"):
        _need_module(module)
    out = Path(given) if given else tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), "--out", str(out), "-j", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"the docs build failed:\n{log[-6000:]}"
    assert "build succeeded" in log and "warning" not in log.split("build succeeded")[-1], log[-3000:]
    return out


@pytest.fixture(scope="module")
def server(site):
    """The built site over HTTP on a free localhost port, as a browser would see it."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def dump_dom(tmp_path_factory):
    """``dump_dom(url)``: the page's DOM after its JavaScript ran, from headless Chromium."""
    browser = _chromium()
    profile = tmp_path_factory.mktemp("chromium-profile")

    def dump(url: str) -> str:
        proc = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0 and "<html" in proc.stdout, (
            f"{browser} failed on {url} (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
        return proc.stdout

    return dump


def test_mathjax_is_local(site):
    """Every page loads MathJax from the site itself, never from a CDN."""
    html = (site / "concepts" / "cells.html").read_text(encoding="utf-8")
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', html, re.I)
    assert scripts, "no MathJax script on the page"
    assert all(not s.startswith(("http:", "https:", "//")) for s in scripts), scripts
    assert (site / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


def test_run_api_entry_and_equations_render(site, server, dump_dom):
    """rnn_jax.run has its API entry; the cells' equations (module docstrings' ``.. math::``)
    are typeset by MathJax in the browser, without TeX errors."""
    runner = (site / "api" / "runner.html").read_text(encoding="utf-8")
    assert 'id="rnn_jax.run"' in runner

    dom = dump_dom(f"{server}/concepts/cells.html")
    containers = re.findall(r"<mjx-container\b[^>]*>", dom)
    displays = [c for c in containers if 'display="true"' in c]
    assert len(containers) >= 8 and len(displays) >= 4, (len(containers), len(displays))
    assert all('jax="CHTML"' in c for c in containers)
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error"

    # A notebook's Markdown math ($...$) renders as well.
    nb = dump_dom(f"{server}/notebooks/02_manual_bptt.html")
    assert len(re.findall(r"<mjx-container\b", nb)) >= 10


def test_search_finds_manual_bptt(server, dump_dom):
    """Sphinx's JavaScript search (searchindex.js) lists the ManualBPTT API entry."""
    dom = dump_dom(f"{server}/search.html?q=ManualBPTT")
    results = re.search(r'<ul[^>]*class="search"[^>]*>(.*?)</ul>', dom, re.S)
    assert results, "the search page shows no results list"
    assert re.search(r'href="[^"]*api/gradients\.html#rnn_jax\.ManualBPTT"', results.group(1)), (
        results.group(1)[:2000]
    )
