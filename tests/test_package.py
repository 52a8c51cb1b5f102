"""Package structure: the core stays free of napari and Qt."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import napari_derotation

GUI_MODULES = ("napari_derotation._napari", "napari_derotation.cli.gui")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(napari_derotation.__path__,
                                      "napari_derotation."):
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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == ""


def test_top_level_api_is_lazy_but_complete():
    code = (
        "import sys, napari_derotation as nd\n"
        "assert 'dask' not in sys.modules and 'skopt' not in sys.modules\n"
        "print(nd.derotate.__module__, nd.derotate_file.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["napari_derotation.engine._driver",
                                  "napari_derotation.engine.files"]
    for name in napari_derotation.__all__:
        assert getattr(napari_derotation, name) is not None, name
