"""Section 4, Export: the derotated stack (TIFF or OME-Zarr, + JSON), the per-frame CSV
and the per-line angles into a folder the user picks; never over the raw
movie, never over existing files unless asked."""

from __future__ import annotations

import re
from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
)

from ..errors import DerotationError
from . import _meta, _model
from ._common import ProgressRow, Section, named, notify, wrapped
from ._workers import Failure, os_message, steps_worker

#: The export formats offered: (label, format of io.outputs.with_format).
EXPORT_FORMATS = (("TIFF (.tif)", "tif"), ("OME-Zarr (.zarr)", "zarr"))


class ExportSection(Section):
    """Folder, file name, overwrite, Export with progress and Cancel."""

    def __init__(self, viewer, session, derotate_section, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.session = session
        self.derotate_section = derotate_section
        self.worker = None
        self.written: list[str] = []
        form = QFormLayout(self)

        row = QHBoxLayout()
        self.folder_edit = named(
            QLineEdit(), "folder_edit", "Folder the files are written to"
        )
        self.folder_button = named(
            QPushButton("Choose…"),
            "folder_button",
            "Pick the folder the files are written to",
        )
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.folder_button)
        form.addRow("Folder", row)
        self.name_edit = named(
            QLineEdit(),
            "name_edit",
            "File names: NAME.tif, NAME.json, "
            "NAME_frames.csv, NAME_angles_per_line.npy",
        )
        form.addRow("Name", self.name_edit)
        self.format_combo = named(
            QComboBox(),
            "format_combo",
            "TIFF stack, or an OME-Zarr store (chunked "
            "by frames; opens lazily in napari)",
        )
        for label, fmt in EXPORT_FORMATS:
            self.format_combo.addItem(label, fmt)
        form.addRow("Format", self.format_combo)
        self.overwrite_checkbox = named(
            QCheckBox("Overwrite existing files"),
            "overwrite_checkbox",
            "Replace files of that name in the folder (an earlier export); "
            "the raw movie is never overwritten",
        )
        form.addRow(self.overwrite_checkbox)
        self.export_button = named(
            QPushButton("Export"),
            "export_button",
            "Write the derotated movie (every channel), its record "
            "NAME.derotation.json, NAME_frames.csv and "
            "NAME_angles_per_line.npy into the folder, in the background",
        )
        form.addRow(self.export_button)
        self.progress = ProgressRow("export")
        form.addRow(self.progress)
        self.result_label = wrapped("export_result_label")
        form.addRow(self.result_label)

        self.folder_button.clicked.connect(self._choose_folder)
        self.export_button.clicked.connect(self.start)
        self.progress.cancel.clicked.connect(self.cancel)
        session.movie_changed.connect(self._on_movie)

    def _on_movie(self, layer) -> None:
        self.result_label.setText("")  # it described another movie
        if layer is None:
            return
        stem = re.sub(r"[^\w.-]+", "_", movie_title(layer)).strip("_") or "movie"
        self.name_edit.setText(f"{stem}_derotated")
        src = _meta.get(layer.metadata).get("movie_path")
        if src and not self.folder_edit.text():
            self.folder_edit.setText(str(Path(src).parent))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Export folder", self.folder_edit.text()
        )
        if folder:
            self.folder_edit.setText(folder)

    def start(self):
        """Write the export in a worker; returns it (started) or None after a
        notification."""
        out = self.derotate_section.derotated_layer()
        if out is None:
            notify(
                "error",
                "nothing to export: derotate the movie first (Derotate section)",
            )
            return None
        data = self._movie(out)
        # every channel's fill when they are all written
        meta = (
            _model.group_metadata(out.metadata)
            if isinstance(data, _model.ChannelStack)
            else dict(out.metadata)
        )
        try:
            job = _model.export_job(
                self.folder_edit.text() or ".",
                self.name_edit.text(),
                data,
                meta,
                overwrite=self.overwrite_checkbox.isChecked(),
                fmt=self.format_combo.currentData(),
            )
        except DerotationError as exc:
            notify("error", str(exc))
            return None
        except OSError as exc:
            notify("error", os_message(exc))
            return None
        self.export_button.setEnabled(False)
        self.progress.start(data.shape[0])
        self.worker = steps_worker(
            _model.export_steps,
            job,
            data,
            meta,
            desc=f"exporting {job.output.path.name}",
        )
        return self.progress.run(
            self.worker,
            on_done=self._on_done,
            on_finished=self._on_finished,
            label=self.result_label,
            cancelled="cancelled; nothing written",
        )

    def _movie(self, out):
        """What is written: the derotated layer, or with several channels
        all of them as one movie with the input's axes (e.g. TCYX)."""
        group = self.derotate_section.channel_layers()
        names = [f"{ly.name} derotated" for ly in group]
        found = [ly for n in names for ly in self.viewer.layers if ly.name == n]
        axes = _meta.get(out.metadata).get("axes")
        if len(group) < 2 or len(found) != len(group) or not axes:
            return out.data
        return _model.ChannelStack([ly.data for ly in found], axes)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_finished(self) -> None:
        self.progress.stop()
        self.export_button.setEnabled(True)

    def _on_done(self, written) -> None:
        if isinstance(written, Failure):
            notify("error", written.message)
            self.result_label.setText(written.message)
            return
        self.written = list(written)
        folder = Path(written[0]).parent
        self.result_label.setText(
            "wrote " + ", ".join(Path(p).name for p in written) + f" in {folder}"
        )
        notify("info", f"exported {len(written)} files to {folder}")


def movie_title(layer) -> str:
    """What the movie of ``layer`` is called: the layer's name, or for one
    channel of a multi-channel movie the movie's (the export holds every
    channel)."""
    d = _meta.get(layer.metadata)
    if int(d.get("channels", 1) or 1) > 1 and "channel" in d:
        if d.get("movie_name"):
            return str(d["movie_name"])
        if d.get("movie_path"):
            return Path(d["movie_path"]).stem
    return layer.name
