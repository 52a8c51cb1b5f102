"""The documentation site builds with warnings as errors, and stays current."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent  # where pip put napari-derotation


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # not --quiet: with it, mkdocs exits 0 although --strict found warnings
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "WARNING" not in log and "Aborted" not in log, log
    assert "Documentation built" in log, log
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
    assert "cli-usage" not in html  # the hook filled it in
    for mod in _commands():
        assert f"usage: napari-derotation {mod.NAME}" in html, mod.NAME
    assert "--scheduler" in html and "--chunk-frames" in html


def test_api_page_is_generated_from_docstrings(site):
    html = (site / "api" / "index.html").read_text()
    for name in (
        "napari_derotation.engine.derotate",
        "napari_derotation.engine.lazy.derotate_lazy",
        "napari_derotation.engine.files.derotate_file",
        "napari_derotation.engine.cluster.derotate_file_distributed",
        "napari_derotation.engine.params.DerotationParams",
        "napari_derotation.simulate.movie.rotate_by_line",
        "napari_derotation.compat.derotate_an_image_array_line_by_line",
    ):
        assert f'id="{name}"' in html, name
    # a sentence of a docstring, rendered
    assert "Derotate a movie lazily" in html


def test_images_exist_and_are_used():
    used = set()
    for page in DOCS.glob("*.md"):
        used |= set(re.findall(r"\(images/([^)]+\.png)\)", page.read_text()))
    assert {
        "science_scan.png",
        "science_inverse.png",
        "science_center.png",
        "science_plane.png",
    } <= used
    for name in used:
        assert (DOCS / "images" / name).stat().st_size > 1000, name


def _demo(cwd, *args):
    return subprocess.run(
        [
            str(BIN / "napari-derotation"),
            "demo",
            "--size",
            "32",
            "--frames",
            "8",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_readme_demo_runs_twice_and_refuses_a_foreign_file(tmp_path):
    """The README's main command works every time: the demo replaces its
    own earlier files (listed in its record), never a file it did not write."""
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr
    out = tmp_path / "derotation-demo"
    assert (out / "demo.json").is_file()
    (out / "raw.tif").write_bytes(b"my own movie")
    third = _demo(tmp_path)
    assert third.returncode == 2
    assert third.stderr.count("\n") == 1 and "raw.tif" in third.stderr
    assert (out / "raw.tif").read_bytes() == b"my own movie"
    # a folder of files another program wrote, with no demo record: refused
    other = tmp_path / "other"
    other.mkdir()
    (other / "derotated.tif").write_bytes(b"mine")
    assert _demo(tmp_path, "-o", str(other)).returncode == 2
    assert (other / "derotated.tif").read_bytes() == b"mine"
    assert "derotation-demo/" in (ROOT / ".gitignore").read_text().split()


def test_every_table_row_is_in_a_table(site):
    """A row after a paragraph or a blank line is shown as raw ``|`` text."""
    for page in DOCS.glob("*.md"):
        lines = page.read_text().splitlines()
        fenced = False
        for i, line in enumerate(lines):
            if line.startswith("```"):
                fenced = not fenced
            if fenced or not line.startswith("|"):
                continue
            prev = lines[i - 1] if i else ""
            starts = i + 1 < len(lines) and re.fullmatch(
                r"\|( *:?-+:? *\|)+", lines[i + 1]
            )
            assert prev.startswith("|") or starts, f"{page.name}:{i + 1}"
    html = (site / "config" / "index.html").read_text()
    assert "<p>| <code>" not in html and "\n| <code>" not in html


def test_config_keys_are_listed_once():
    rows = re.findall(r"^\| `([^`]+)`", (DOCS / "config.md").read_text(), re.M)
    assert "paths_write.saving_name" in rows and "blank_value" in rows
    assert sorted({r for r in rows if rows.count(r) > 1}) == []


# --- every shell block of the docs runs ------------------------------------

NOT_RUN = re.compile(r"<!-- not-run: (.+?) -->")
MAX_NOT_RUN = 14


def shell_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, reason)`` of every shell block of a page, in order;
    ``reason`` is the text of a ``<!-- not-run: REASON -->`` comment on the
    line before the block (blank lines between allowed), else None."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"```\s*(\w*)", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        lang = fence.group(1)
        assert lang not in ("sh", "shell", "console", "zsh"), (
            f"{page.name}:{i + 1}: write shell blocks as ```bash"
        )
        if lang == "bash":
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = NOT_RUN.fullmatch(lines[k].strip()) if k >= 0 else None
            blocks.append(
                (
                    i + 1,
                    "\n".join(lines[i + 1 : end]),
                    marker.group(1) if marker else None,
                )
            )
        i = end + 1
    return blocks


PAGES = sorted(DOCS.glob("*.md"))


def test_not_run_markers_are_few_and_say_why():
    reasons, markers = [], 0
    for page in PAGES:
        text = page.read_text()
        markers += len(NOT_RUN.findall(text))
        reasons += [r for _, _, r in shell_blocks(page) if r is not None]
    # every marker stands before a shell block
    assert markers == len(reasons)
    assert 0 < len(reasons) <= MAX_NOT_RUN, reasons
    for reason in reasons:
        assert len(reason.split()) >= 2, reason
    assert "not-run" not in (ROOT / "README.md").read_text()


def _run_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env.pop("DISPLAY", None)
    return env


def _run_page(page: str, folder: Path) -> str | None:
    """Run the page's shell blocks in order in ``folder``; the first
    failure in words, or None."""
    env = _run_env()
    for line, code, reason in shell_blocks(DOCS / page):
        if reason is not None:
            continue
        try:
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", code],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            return f"{page}:{line} took more than 300 s\n{code}"
        if done.returncode != 0:
            return (
                f"{page}:{line} exited {done.returncode}\n{code}\n"
                f"{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
    return None


RUN_PAGES = [p.name for p in PAGES if any(r is None for *_, r in shell_blocks(p))]


@pytest.fixture(scope="module")
def page_runs(tmp_path_factory):
    """Every page's blocks, the pages side by side (each command is mostly
    interpreter start-up), each page in its own temporary folder."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=max(1, len(RUN_PAGES)))
    runs = {
        page: pool.submit(
            _run_page, page, tmp_path_factory.mktemp(page.removesuffix(".md"))
        )
        for page in RUN_PAGES
    }
    yield runs
    pool.shutdown(wait=True)


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES)
def test_shell_blocks_run_in_order(page, page_runs):
    """Each page's shell blocks, in order, in one temporary folder, with
    the installed ``napari-derotation`` (and ``python``) on the PATH."""
    failure = page_runs[page].result()
    assert failure is None, failure
