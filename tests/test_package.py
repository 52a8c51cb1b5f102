"""Package structure: the core stays free of napari and Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import napari_derotation

GUI_MODULES = ("napari_derotation._napari", "napari_derotation.cli.gui")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(napari_derotation.__path__, "napari_derotation."):
        if not info.name.startswith(GUI_MODULES):
            names.append(info.name)
    return names


def test_core_modules_import_neither_napari_nor_qt():
    mods = core_modules()
    assert "napari_derotation.engine" in mods and len(mods) > 8
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in "
        "('napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui',"
        " 'vispy'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_top_level_api_is_lazy_but_complete():
    code = (
        "import sys, napari_derotation as nd\n"
        "assert 'dask' not in sys.modules and 'skopt' not in sys.modules\n"
        "print(nd.derotate.__module__, nd.derotate_file.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [
        "napari_derotation.engine.api",
        "napari_derotation.engine.files",
    ]
    for name in napari_derotation.__all__:
        assert getattr(napari_derotation, name) is not None, name


def test_gui_without_napari_says_what_to_install():
    code = (
        "import sys; sys.modules['napari'] = None\n"
        "from napari_derotation.cli import main\n"
        "sys.exit(main(['gui']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1
    assert "pip install 'napari-derotation[qt]'" in out.stderr


def test_old_module_paths_are_gone_and_no_finder_is_installed():
    import importlib
    import sys

    assert not any(
        type(f).__module__.startswith("napari_derotation") for f in sys.meta_path
    )
    for old in ("stream", "lazy", "cluster", "ellipse", "signals", "config"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"napari_derotation.{old}")
    import napari_derotation as nd

    assert (
        nd.derotate_file
        is importlib.import_module("napari_derotation.engine.files").derotate_file
    )


def test_no_function_over_70_statements_outside_the_kernels():
    """A function a reader takes in at once: at most 70 logical lines
    (statements; a call spread over lines by the formatter is one), the
    compiled kernels apart."""
    import ast
    import io
    import tokenize

    root = Path(napari_derotation.__file__).parent
    long = []
    for path in root.rglob("*.py"):
        if path.name == "_kernels.py":
            continue
        src = path.read_text()
        ends = [
            t.start[0]
            for t in tokenize.generate_tokens(io.StringIO(src).readline)
            if t.type == tokenize.NEWLINE
        ]
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = sum(node.lineno <= e <= node.end_lineno for e in ends)
                if n > 70:
                    long.append(f"{path.relative_to(root)}:{node.name} ({n})")
    assert long == []


ROOT = Path(__file__).resolve().parents[1]


def test_code_is_formatted_and_tox_lint_checks_it():
    """``ruff format --check`` passes, and ``tox -e lint`` runs it beside
    ``ruff check`` (a check nobody runs cannot fail)."""
    import configparser

    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    lint = tox["testenv:lint"]["commands"].split("\n")
    assert "ruff check src tests benchmarks" in lint
    assert "ruff format --check src tests benchmarks" in lint
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "format",
            "--check",
            "src",
            "tests",
            "benchmarks",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


def test_sdist_carries_what_its_tests_need_and_the_license(tmp_path):
    import tarfile

    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [sdist] = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        top = sdist.name.removesuffix(".tar.gz")
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode()
    tests = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert {
        "tests/conftest.py",
        "tests/helpers.py",
        "tests/data/stimulus_randperm.csv",
    } <= tests
    assert tests <= names, sorted(tests - names)
    assert {
        "LICENSE",
        "README.md",
        "mkdocs.yml",
        "docs/index.md",
        "tools/system-deps.sh",
    } <= names
    assert "License-Expression: BSD-3-Clause" in pkg_info
    assert "License-File: LICENSE" in pkg_info
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, napari-derotation developers" in text


def test_the_tests_mirror_the_package():
    """Each folder of tests/ is a part of the package (the plugin's is
    ``napari_plugin``, for ``_napari``), so a module's tests are found
    beside its name."""
    pkg = Path(napari_derotation.__file__).parent
    parts = {p.name for p in pkg.iterdir() if (p / "__init__.py").exists()}
    folders = {
        p.name
        for p in (ROOT / "tests").iterdir()
        if p.is_dir() and p.name not in ("data", "__pycache__")
    }
    assert folders
    assert folders - {"napari_plugin"} <= parts, folders - parts
    assert "_napari" in parts
