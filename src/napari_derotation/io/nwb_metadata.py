"""The session's metadata of an NWB output, from a YAML file laid out as
neuroconv's metadata YAML.

.. code-block:: yaml

    NWBFile:
      session_description: derotated two-photon imaging during passive rotation
      identifier: 5b1e...          # optional: a new UUID by default
      session_start_time: 2024-05-02T14:03:11+01:00   # optional (ScanImage)
      experimenter: ["Doe, Jane"]
      lab: Rotation Lab
      institution: Some University
      keywords: [two-photon, rotation]
    Subject:
      subject_id: m042
      species: Mus musculus
      sex: F                       # M, F, U or O
      age: P90D                    # ISO 8601 duration (or date_of_birth)
    Ophys:
      Device:
        - name: Microscope
          description: resonant two-photon microscope
          manufacturer: Thorlabs
      ImagingPlane:
        - name: ImagingPlane
          description: layer 2/3
          excitation_lambda: 920.0
          indicator: GCaMP6s
          location: RSP
          optical_channel:
            - name: Green
              description: green PMT
              emission_lambda: 510.0
      TwoPhotonSeries:
        - name: TwoPhotonSeries
          description: raw movie

``Ophys`` follows neuroconv's lists (``Device``, ``ImagingPlane``,
``TwoPhotonSeries``); its newer keyed layout (``Devices`` at the top,
``Ophys.ImagingPlanes`` and ``Ophys.TwoPhotonSeries`` keyed by a metadata
key, linked by ``device_metadata_key`` / ``imaging_plane_metadata_key``) is
read too. Other sections (``Ecephys``, ``Behavior``, segmentation...) are
not used here and reported in :attr:`NWBMetadata.ignored`.

Every value is checked the way the NWB Inspector (what DANDI runs) checks
it, and refused with one line naming the key: a subject (``subject_id``,
``species`` as a Latin binomial or an NCBI taxonomy link, ``sex``, ``age``
as an ISO 8601 duration or ``date_of_birth``) is required. The file is
parsed with ``yaml.safe_load`` (no tags run), at most 1 MiB.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DerotationError

__all__ = [
    "NWBMetadata",
    "load_nwb_metadata",
    "nwb_metadata",
    "scanimage_start_time",
    "SUBJECT_HINT",
]

#: The one line for an NWB output without a subject.
SUBJECT_HINT = (
    "NWB output needs a subject: give --nwb-metadata FILE.yaml "
    "(config: paths_write.nwb_metadata) with Subject: "
    "{subject_id, species, sex, age}"
)

#: Largest metadata file read (bytes), and longest list in it.
MAX_BYTES = 1 << 20
MAX_ITEMS = 1000

_NWBFILE_TEXT = (
    "session_description",
    "identifier",
    "experiment_description",
    "session_id",
    "lab",
    "institution",
    "notes",
    "pharmacology",
    "protocol",
    "slices",
    "data_collection",
    "surgery",
    "virus",
    "stimulus_notes",
)
_NWBFILE_LISTS = ("experimenter", "keywords", "related_publications")
_NWBFILE_KEYS = (*_NWBFILE_TEXT, *_NWBFILE_LISTS, "session_start_time")
_SUBJECT_KEYS = (
    "subject_id",
    "species",
    "sex",
    "age",
    "date_of_birth",
    "description",
    "genotype",
    "strain",
    "weight",
    "age__reference",
)
_DEVICE_KEYS = (
    "name",
    "description",
    "manufacturer",
    "model_number",
    "model_name",
    "serial_number",
)
_PLANE_TEXT = (
    "name",
    "description",
    "indicator",
    "location",
    "device",
    "device_metadata_key",
    "reference_frame",
    "grid_spacing_unit",
    "origin_coords_unit",
)
_PLANE_KEYS = (
    *_PLANE_TEXT,
    "excitation_lambda",
    "imaging_rate",
    "optical_channel",
    "grid_spacing",
    "origin_coords",
)
_CHANNEL_KEYS = ("name", "description", "emission_lambda")
_SERIES_KEYS = (
    "name",
    "description",
    "unit",
    "field_of_view",
    "pmt_gain",
    "scan_line_rate",
    "dimension",
    "imaging_plane",
    "imaging_plane_metadata_key",
)
_SEXES = ("M", "F", "U", "O")
_ELEGANS_SEXES = ("XO", "XX")
_NUM = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?=\d|T\d)(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
    rf"(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?"
)
_SPECIES = re.compile(
    r"[A-Z][a-z]* [a-z]+|"
    r"http://purl\.obolibrary\.org/obo/NCBITaxon_\d+"
)
_WEIGHT = re.compile(r"(?i)\d+(\.\d+)? (kg|g|mg|ug|μg|ng|pg)")
#: NWB's lambdas are nanometres; below this a value is in another unit.
_MIN_NM = 100.0


@dataclass(frozen=True)
class NWBMetadata:
    """Checked keyword arguments for ``pynwb``: ``nwbfile`` for
    ``NWBFile`` (``session_start_time`` may be missing: the movie's, else
    now), ``subject`` for ``Subject``, and the ``Ophys`` lists (the planes'
    ``optical_channel`` as dicts, ``device`` as a device name)."""

    nwbfile: dict
    subject: dict
    devices: list = field(default_factory=list)
    imaging_planes: list = field(default_factory=list)
    two_photon_series: list = field(default_factory=list)
    source: str = "metadata"
    ignored: tuple = ()


def load_nwb_metadata(path) -> NWBMetadata:
    """Read and check the metadata YAML ``path`` (see the module doc),
    bounded as every YAML the program reads
    (:func:`napari_derotation.io.text.load_yaml`)."""
    from .text import load_yaml

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DerotationError(f"NWB metadata {path}: {exc.strerror or exc}") from None
    if size > MAX_BYTES:
        raise DerotationError(
            f"NWB metadata {path.name}: {size} bytes; expected at most "
            f"{MAX_BYTES} (a YAML of the session's metadata)"
        )
    return nwb_metadata(load_yaml(path, "NWB metadata"), source=path.name)


def nwb_metadata(value, *, source: str = "metadata") -> NWBMetadata:
    """An :class:`NWBMetadata` from a path (YAML), a mapping in the file's
    layout, or an :class:`NWBMetadata`; ``None`` or no ``Subject`` is the
    one-line :data:`SUBJECT_HINT`."""
    if isinstance(value, NWBMetadata):
        return value
    if value is None:
        raise DerotationError(SUBJECT_HINT)
    if isinstance(value, str | Path):
        return load_nwb_metadata(value)
    if not isinstance(value, Mapping):
        raise DerotationError(
            f"{source}: expected a mapping with NWBFile, Subject and Ophys; "
            f"got {type(value).__name__}"
        )
    top = {str(k): v for k, v in value.items()}
    if top.get("Subject") is None:
        raise DerotationError(f"{source}: {SUBJECT_HINT}")
    ignored = tuple(
        k for k in top if k not in ("NWBFile", "Subject", "Ophys", "Devices")
    )
    nwbfile = _nwbfile(_section(top, "NWBFile", source), source)
    subject = _subject(_section(top, "Subject", source), source)
    ophys = _section(top, "Ophys", source)
    devices, planes, series, more = _ophys(ophys, top.get("Devices"), source)
    return NWBMetadata(
        nwbfile=nwbfile,
        subject=subject,
        devices=devices,
        imaging_planes=planes,
        two_photon_series=series,
        source=source,
        ignored=ignored + more,
    )


# ------------------------------------------------------------------ sections
def _section(top, name, source) -> dict:
    value = top.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DerotationError(
            f"{source}: {name}: expected a mapping of keys to values; got "
            f"{_shown(value)}"
        )
    return {str(k): v for k, v in value.items()}


def _known(section: dict, keys, where, source) -> None:
    for k in section:
        if k not in keys:
            raise DerotationError(
                f"{source}: {where}.{k}: unknown key; expected one of {', '.join(keys)}"
            )


def _nwbfile(sec: dict, source) -> dict:
    _known(sec, _NWBFILE_KEYS, "NWBFile", source)
    out = {}
    for k in _NWBFILE_TEXT:
        if sec.get(k) is not None:
            out[k] = _text(sec[k], f"NWBFile.{k}", source)
    for k in _NWBFILE_LISTS:
        if sec.get(k) is not None:
            out[k] = _texts(sec[k], f"NWBFile.{k}", source)
    if "session_id" in out and "/" in out["session_id"]:
        raise DerotationError(
            f"{source}: NWBFile.session_id: must not contain '/'; got "
            f"{out['session_id']!r}"
        )
    if sec.get("session_start_time") is not None:
        out["session_start_time"] = _when(
            sec["session_start_time"], "NWBFile.session_start_time", source
        )
    return out


def _subject(sec: dict, source) -> dict:
    _known(sec, _SUBJECT_KEYS, "Subject", source)
    out = {
        k: _text(v, f"Subject.{k}", source)
        for k, v in sec.items()
        if v is not None and k != "date_of_birth"
    }
    missing = [k for k in ("subject_id", "species", "sex") if not out.get(k)]
    if not out.get("age") and sec.get("date_of_birth") is None:
        missing.append("age")
    if missing:
        raise DerotationError(
            f"{source}: Subject needs {', '.join(missing)} (Subject: "
            f"{{subject_id, species, sex, age}})"
        )
    if "/" in out["subject_id"]:
        raise DerotationError(
            f"{source}: Subject.subject_id: must not contain '/'; got "
            f"{out['subject_id']!r}"
        )
    if not _SPECIES.fullmatch(out["species"]):
        raise DerotationError(
            f"{source}: Subject.species: expected a Latin binomial (e.g. "
            f"'Mus musculus') or an NCBI taxonomy link (http://purl."
            f"obolibrary.org/obo/NCBITaxon_10090); got {out['species']!r}"
        )
    sexes = (
        _ELEGANS_SEXES
        if out["species"] in ("Caenorhabditis elegans", "C. elegans")
        else _SEXES
    )
    if out["sex"] not in sexes:
        raise DerotationError(
            f"{source}: Subject.sex: expected one of {', '.join(sexes)} "
            f"(male, female, unknown, other); got {out['sex']!r}"
        )
    if out.get("age") is not None:
        _age(out["age"], source)
    if out.get("age__reference") not in (None, "birth", "gestational"):
        raise DerotationError(
            f"{source}: Subject.age__reference: expected birth or "
            f"gestational; got {out['age__reference']!r}"
        )
    if out.get("weight") is not None and not _WEIGHT.fullmatch(out["weight"]):
        raise DerotationError(
            f"{source}: Subject.weight: expected a number and a unit, e.g. "
            f"'25 g'; got {out['weight']!r}"
        )
    if sec.get("date_of_birth") is not None:
        out["date_of_birth"] = _when(
            sec["date_of_birth"], "Subject.date_of_birth", source
        )
    return out


def _age(age: str, source) -> None:
    parts = age.split("/") if "/" in age else [age]
    ok = (
        len(parts) <= 2
        and all(
            _DURATION.fullmatch(p) or (i == 1 and p == "") for i, p in enumerate(parts)
        )
        and parts[0] != ""
    )
    if not ok:
        raise DerotationError(
            f"{source}: Subject.age: expected an ISO 8601 duration (P90D: 90 "
            f"days, P12W, P2Y, or a range P80D/P100D); got {age!r}"
        )


def _ophys(sec: dict, top_devices, source):
    """The Ophys lists in neuroconv's list layout, from either layout."""
    more = tuple(
        f"Ophys.{k}"
        for k in sec
        if k not in ("Device", "ImagingPlane", "ImagingPlanes", "TwoPhotonSeries")
    )
    keyed_devices = {}
    if top_devices is not None:
        keyed_devices = _keyed(top_devices, "Devices", source)
    devices = [
        _checked(d, _DEVICE_KEYS, f"Ophys.Device[{i}]", source)
        for i, d in enumerate(_items(sec.get("Device"), "Ophys.Device", source))
    ]
    for key, d in keyed_devices.items():
        devices.append(_checked(d, _DEVICE_KEYS, f"Devices.{key}", source))
    device_names = {key: d.get("name", key) for key, d in keyed_devices.items()}
    planes_in = [
        (f"Ophys.ImagingPlane[{i}]", p)
        for i, p in enumerate(
            _items(sec.get("ImagingPlane"), "Ophys.ImagingPlane", source)
        )
    ]
    plane_keys = {}
    if sec.get("ImagingPlanes") is not None:
        for key, p in _keyed(
            sec["ImagingPlanes"], "Ophys.ImagingPlanes", source
        ).items():
            planes_in.append((f"Ophys.ImagingPlanes.{key}", p))
            plane_keys[key] = len(planes_in) - 1
    planes = [_plane(p, where, device_names, source) for where, p in planes_in]
    names = {
        key: planes[i].get("name", "ImagingPlane") for key, i in plane_keys.items()
    }
    series_in = sec.get("TwoPhotonSeries")
    if (
        isinstance(series_in, Mapping)
        and series_in
        and all(isinstance(v, Mapping) for v in series_in.values())
    ):
        series_in = list(series_in.values())
    series = []
    for i, s in enumerate(_items(series_in, "Ophys.TwoPhotonSeries", source)):
        s = _checked(s, _SERIES_KEYS, f"Ophys.TwoPhotonSeries[{i}]", source)
        key = s.pop("imaging_plane_metadata_key", None)
        if key is not None and key in plane_keys:
            s["imaging_plane"] = names.get(key)
        series.append(s)
    return devices, planes, series, more


def _plane(p, where, device_names, source) -> dict:
    p = _checked(p, _PLANE_KEYS, where, source)
    key = p.pop("device_metadata_key", None)
    if key is not None:
        p.setdefault("device", device_names.get(key, key))
    for k in ("excitation_lambda", "imaging_rate"):
        if k in p:
            p[k] = _positive(p[k], f"{where}.{k}", source)
    if p.get("excitation_lambda", _MIN_NM) < _MIN_NM:
        raise DerotationError(
            f"{source}: {where}.excitation_lambda: expected nanometres (e.g. "
            f"920); got {p['excitation_lambda']:g}"
        )
    channels = []
    for i, c in enumerate(
        _items(p.get("optical_channel"), f"{where}.optical_channel", source)
    ):
        here = f"{where}.optical_channel[{i}]"
        c = _checked(c, _CHANNEL_KEYS, here, source)
        if "emission_lambda" in c:
            c["emission_lambda"] = _positive(
                c["emission_lambda"], f"{here}.emission_lambda", source
            )
            if c["emission_lambda"] < _MIN_NM:
                raise DerotationError(
                    f"{source}: {here}.emission_lambda: expected nanometres "
                    f"(e.g. 510); got {c['emission_lambda']:g}"
                )
        channels.append(c)
    p["optical_channel"] = channels
    for k in ("grid_spacing", "origin_coords"):
        if k in p:
            values = _items(p[k], f"{where}.{k}", source)
            if not 2 <= len(values) <= 3:
                raise DerotationError(
                    f"{source}: {where}.{k}: expected 2 or 3 numbers; got "
                    f"{_shown(p[k])}"
                )
            p[k] = [_number(v, f"{where}.{k}", source) for v in values]
    return p


def _checked(d, keys, where, source) -> dict:
    if not isinstance(d, Mapping):
        raise DerotationError(f"{source}: {where}: expected a mapping; got {_shown(d)}")
    d = {str(k): v for k, v in d.items() if v is not None}
    _known(d, keys, where, source)
    for k in (
        "name",
        "description",
        "manufacturer",
        "model_number",
        "model_name",
        "serial_number",
        "unit",
        *_PLANE_TEXT,
    ):
        if k in d:
            d[k] = _text(d[k], f"{where}.{k}", source)
    if "name" in d and "/" in d["name"]:
        raise DerotationError(
            f"{source}: {where}.name: must not contain '/'; got {d['name']!r}"
        )
    for k in ("field_of_view", "dimension"):
        if k in d:
            values = _items(d[k], f"{where}.{k}", source)
            d[k] = [_number(v, f"{where}.{k}", source) for v in values]
    for k in ("pmt_gain", "scan_line_rate"):
        if k in d:
            d[k] = _positive(d[k], f"{where}.{k}", source)
    return d


def _keyed(value, where, source) -> dict:
    if not isinstance(value, Mapping) or len(value) > MAX_ITEMS:
        raise DerotationError(
            f"{source}: {where}: expected a mapping of metadata keys to "
            f"entries; got {_shown(value)}"
        )
    return {str(k): v for k, v in value.items()}


# ------------------------------------------------------------------ values
def _items(value, where, source) -> list:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, list | tuple):
        raise DerotationError(
            f"{source}: {where}: expected a list; got {_shown(value)}"
        )
    if len(value) > MAX_ITEMS:
        raise DerotationError(
            f"{source}: {where}: {len(value)} entries; expected at most {MAX_ITEMS}"
        )
    return list(value)


def _text(value, where, source) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DerotationError(f"{source}: {where}: expected text; got {_shown(value)}")
    text = str(value).strip()
    if not text or len(text) > 100_000:
        raise DerotationError(
            f"{source}: {where}: expected a non-empty text (at most 100000 "
            f"characters); got {_shown(value)}"
        )
    return text


def _texts(value, where, source) -> list:
    values = [value] if isinstance(value, str) else _items(value, where, source)
    return [_text(v, where, source) for v in values]


def _number(value, where, source) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DerotationError(
            f"{source}: {where}: expected a number; got {_shown(value)}"
        )
    if not math.isfinite(float(value)):
        raise DerotationError(
            f"{source}: {where}: expected a finite number; got {value}"
        )
    return float(value)


def _positive(value, where, source) -> float:
    x = _number(value, where, source)
    if not x > 0:
        raise DerotationError(f"{source}: {where}: expected a number > 0; got {x:g}")
    return x


def _when(value, where, source) -> datetime.datetime:
    """A datetime from YAML's timestamp, a date, or ISO 8601 text; a time
    without a zone is local time."""
    if isinstance(value, datetime.datetime):
        when = value
    elif isinstance(value, datetime.date):
        when = datetime.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            when = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            raise DerotationError(
                f"{source}: {where}: expected an ISO 8601 date and time "
                f"(2024-05-02T14:03:11 or 2024-05-02T14:03:11+01:00); got "
                f"{value!r}"
            ) from None
    else:
        raise DerotationError(
            f"{source}: {where}: expected an ISO 8601 date and time; got "
            f"{_shown(value)}"
        )
    if when.tzinfo is None:
        when = when.astimezone()
    if when > datetime.datetime.now(datetime.UTC):
        raise DerotationError(f"{source}: {where}: {when.isoformat()} is in the future")
    return when


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------ ScanImage
_EPOCH = re.compile(r"epoch\s*=\s*\[([^\]]*)\]")


def scanimage_start_time(path) -> datetime.datetime | None:
    """When a ScanImage acquisition started (its frames' ``epoch = [Y M D h
    m s]``, the rig's local clock), from the first file of ``path`` (a
    TIFF, or a folder or glob of one acquisition); ``None`` when not
    there."""
    import tifffile

    from .sources import movie_files

    try:
        files = movie_files(path)
    except Exception:
        return None
    if not files or files[0].suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(files[0]) as tif:
            text = tif.pages.first.description or ""
    except Exception:
        return None
    m = _EPOCH.search(text)
    if m is None:
        return None
    try:
        y, mo, d, h, mi, s = (
            float(v) for v in re.split(r"[\s,;]+", m.group(1).strip())
        )
        sec = int(s)
        when = datetime.datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            sec,
            int(round((s - sec) * 1e6)) % 1000000,
        )
    except (ValueError, TypeError):
        return None
    return when.astimezone()
