"""The documentation: the site builds with ``mkdocs build --strict`` and renders in headless Chromium (headings
found, no console errors); every notebook runs top to bottom in its short mode; in a notebook an experiment shows
its table and loss curves; the README stays a front page."""

import functools
import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chromium import CHROMIUM, FLAGS
from conftest import has_real_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_readme_is_a_front_page_with_the_two_commands_at_the_top():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    head = text[: text.index("<!-- test-command -->") + 200]
    assert "aelab compare" in head and "pytest" in head
    assert "mkdocs serve" in text


def test_every_tutorial_has_a_notebook_and_every_notebook_is_in_the_site():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 7 and all((ROOT / "docs" / "notebooks" / n).exists() for n in names)
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(f"notebooks/{n}" in nav for n in names)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return out


@pytest.mark.slow
def test_the_site_builds_strict_with_the_api_reference_and_the_notebooks(site):
    assert (site / "index.html").is_file() and (site / "reference" / "models" / "index.html").is_file()
    api = (site / "reference" / "models" / "index.html").read_text()
    assert "aelab.models.autoencoder" in api and "AutoEncoder" in api and "test_measures" in api
    first = (site / "notebooks" / "01_linear_vs_conv" / "index.html").read_text()
    assert "Linear vs convolutional autoencoders" in first


@pytest.mark.slow
@pytest.mark.requires("chromium")
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_site_renders_in_chromium_without_console_errors(site, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for page, heading in (("/", "aelab — autoencoders on images"), ("/reference/models/", "aelab.models")):
            run = subprocess.run(
                [
                    CHROMIUM,
                    *FLAGS,
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--enable-logging=stderr",
                    "--v=0",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    base + page,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert run.returncode == 0, run.stderr[-2000:]
            assert re.search(rf"<h1[^>]*>\s*{re.escape(heading)}", run.stdout), page
            console = [line for line in run.stderr.splitlines() if "CONSOLE" in line]
            assert [line for line in console if re.search(r"Uncaught|error", line, re.I)] == [], page
    finally:
        server.shutdown()


def _execute(path: Path, tmp_path: Path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("AELAB_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("AELAB_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return book


@pytest.mark.slow
@pytest.mark.requires("real Fashion-MNIST")
@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_runs_top_to_bottom_in_its_short_mode(path, tmp_path, monkeypatch):
    book = _execute(path, tmp_path, monkeypatch)
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    if path.name.startswith("01_"):  # aelab.compare(...) shows its table and loss curves inline
        shown = [o for o in book.cells[3].outputs if o.output_type in ("execute_result", "display_data")]
        assert shown and "<table" in shown[0]["data"]["text/html"] and "image/png" in shown[0]["data"]


@pytest.mark.slow
@pytest.mark.requires("real Fashion-MNIST")
@pytest.mark.skipif(not has_real_fashion_mnist(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)")
def test_the_python_api_block_runs_as_written(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "guide" / "python-api.md").read_text()
    block = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "python-api.md", "exec"), scope)
    assert scope["out"].reconstruction.shape == (8, 1, 28, 28) and tuple(scope["out"].code.shape) == (8, 64, 1, 1)
    assert (tmp_path / "runs" / "mine" / "model" / "model.safetensors").is_file()
    assert tuple(scope["images"].shape) == (16, 1, 28, 28)
