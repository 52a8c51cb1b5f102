"""The documentation site builds with warnings as errors, and stays current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def _nav_files(nav) -> list[str]:
    files = []
    for item in nav:
        for value in item.values():
            files += _nav_files(value) if isinstance(value, list) else [value]
    return files


def test_every_page_is_in_the_nav_and_built(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_files(config["nav"])
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(nav) == pages
    for page in nav:
        name = page.removesuffix(".md")
        html = site / ("index.html" if name == "index" else f"{name}/index.html")
        assert html.is_file(), page


def test_cli_page_has_every_subcommand_usage(site):
    from napari_derotation.cli import _commands

    html = (site / "cli" / "index.html").read_text()
    assert "cli-usage" not in html                 # the hook filled it in
    for mod in _commands():
        assert f"usage: napari-derotation {mod.NAME}" in html, mod.NAME
    assert "--scheduler" in html and "--chunk-frames" in html


def test_api_page_is_generated_from_docstrings(site):
    html = (site / "api" / "index.html").read_text()
    for name in ("napari_derotation.engine.derotate",
                 "napari_derotation.engine.lazy.derotate_lazy",
                 "napari_derotation.engine.files.derotate_file",
                 "napari_derotation.engine.cluster.derotate_file_distributed",
                 "napari_derotation.engine.params.DerotationParams",
                 "napari_derotation.simulate.movie.rotate_by_line",
                 "napari_derotation.compat.derotate_an_image_array_line_by_line"):
        assert f'id="{name}"' in html, name
    # a sentence of a docstring, rendered
    assert "Derotate a movie lazily" in html


def test_images_exist_and_are_used():
    used = set()
    for page in DOCS.glob("*.md"):
        used |= set(re.findall(r"\(images/([^)]+\.png)\)", page.read_text()))
    assert {"science_scan.png", "science_inverse.png", "science_center.png",
            "science_plane.png"} <= used
    for name in used:
        assert (DOCS / "images" / name).stat().st_size > 1000, name
