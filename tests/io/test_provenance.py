"""Records name their files by absolute paths."""

from __future__ import annotations

import json

import numpy as np
import tifffile

from napari_derotation.cli import main


def test_record_paths_are_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("m.tif", np.zeros((2, 8, 8), np.uint16))
    np.save("m_angles.npy", np.linspace(0, 10, 16))
    assert (
        main(
            [
                "derotate",
                "m.tif",
                "--angles",
                "m_angles.npy",
                "-o",
                "out.tif",
                "--quiet",
            ]
        )
        == 0
    ), capsys.readouterr().err
    rec = json.loads((tmp_path / "out.derotation.json").read_text())
    assert rec["input"]["path"] == str((tmp_path / "m.tif").resolve())
    assert rec["angles"]["source"] == str((tmp_path / "m_angles.npy").resolve())
