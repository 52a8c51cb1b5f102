"""How good is a derotation? Measures on the output, and warnings in words.

:func:`assess` compares a derotated movie with what a right derotation
gives: a stationary sample, the same in every frame. From a sample of frames
(at most ``max_frames``, spread over the movie) it measures

- the **mean images**, raw and derotated;
- the **residual motion** per angle bin and overall: the centre search's
  objective (:class:`~napari_derotation.center.ResidualMotion`) computed on
  the output's frames: angle-binned means, smoothed, normalised inside the
  inscribed disc about the centre, and the share of their variance not
  shared by all bins (0 when every bin agrees);
- the **residual rotation** of every frame (degrees, the angles' sign): the
  frame registered by rotation about the centre against the reference,
  the mean of the least-turned derotated frames (those within 2 degrees of
  the least-turned one: the frames any error of the angles affects least), by
  cross-correlating polar resamplings of an annulus along the angle;
- the **residual shift** of every angle bin's mean against the reference
  (phase correlation), and the centre error that explains it: with a
  centre ``e`` pixels off, the frames at angle ``theta`` are displaced by
  ``(R(theta) - I) e``, so cells smear into rings of radius ``|e|`` in the
  mean;
- the **blank share**: pixels no scanned line covered (the fill value).

and turns them into **warnings**: a residual rotation that grows with the
speed of rotation (a slope against the frames' speed) means an angle delay
not corrected, and says how many lines; a residual rotation that follows
the angle (about twice it, alternating with the direction) means the
angles' sign is wrong; a residual shift explained by a centre error (rings
in the mean) means a wrong centre. A right derotation warns of nothing.

:func:`report_for_output` reads a derotated output and its record
(``OUT.derotation.json``, which names the input movie and the angles'
source), :func:`write_report` writes ``OUT.qc.json`` and ``OUT.qc.png``
(matplotlib, the ``plots`` extra) atomically. ``napari-derotation qc OUT``
does both; ``run``/``batch`` write them beside their outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import DerotationError
from .frames import inscribed_radius, wrap_degrees

__all__ = [
    "assess",
    "report_for_output",
    "write_report",
    "report_paths",
    "write_beside",
    "register_rotation",
    "register_shift",
    "QC_SUFFIXES",
    "DELAY_WARN_DEGREES",
    "SIGN_WARN_SLOPE",
    "CENTER_WARN_PX",
]

#: What the report's files add to the output's stem.
QC_SUFFIXES = (".qc.json", ".qc.png")
#: A delay is reported when it explains residual rotations differing by
#: more than this (degrees) between the slowest and fastest frames.
DELAY_WARN_DEGREES = 0.3
#: A wrong sign is reported when the residual rotation follows the angle
#: with a slope beyond this (a flipped sign gives 2).
SIGN_WARN_SLOPE = 0.5
#: A wrong centre is reported when the residual shifts of the angle bins
#: are explained by a centre this many pixels off.
CENTER_WARN_PX = 0.5
#: The reference is the mean of the frames turned at most this many degrees
#: more than the least-turned frame (at most 64 of them).
REFERENCE_DEGREES = 2.0
#: Frames registered at most.
MAX_FRAMES = 256
#: Angle samples of the polar resampling (0.5 degree apart).
N_THETA = 720


def report_paths(out_path) -> tuple[Path, Path]:
    """``OUT.tif`` -> ``(OUT.qc.json, OUT.qc.png)``."""
    out = Path(out_path)
    name = out.name
    for s in (".ome.zarr", ".zarr", ".tiff", ".tif", ".nwb"):
        if name.lower().endswith(s):
            name = name[: -len(s)]
            break
    return tuple(out.with_name(name + s) for s in QC_SUFFIXES)


# ------------------------------------------------------------ registration


def _polar(image, center, radii, n_theta=N_THETA):
    """``image`` resampled on circles about ``center`` (rows: radii)."""
    theta = np.deg2rad(np.arange(n_theta) * (360.0 / n_theta))
    rr = center[0] + radii[:, None] * np.sin(theta)[None, :]
    cc = center[1] + radii[:, None] * np.cos(theta)[None, :]
    return ndimage.map_coordinates(
        np.asarray(image, np.float64), [rr, cc], order=1, mode="nearest"
    )


def _ring_normalised(p):
    p = np.where(np.isfinite(p), p, np.nan)
    mean = np.nanmean(p, axis=1, keepdims=True)
    p = np.where(np.isnan(p), mean, p) - mean
    return np.nan_to_num(p)


def _peak(c):
    """Sub-sample position of the maximum of the circular array ``c``."""
    k = int(np.argmax(c))
    a, b, d = c[k - 1], c[k], c[(k + 1) % c.size]
    den = a - 2 * b + d
    off = 0.5 * (a - d) / den if den < 0 else 0.0
    return k + off


def register_rotation(
    frames, reference, center, radius=None, n_theta=N_THETA
) -> np.ndarray:
    """The rotation (degrees, in (-180, 180]) of each of ``frames`` about
    ``center`` relative to ``reference``, in the angles' sign: the angle
    that :func:`~napari_derotation.simulate.rotate_by_line` turns the
    reference by to give the frame. Found by cross-correlating polar
    resamplings of the annulus from 0.15 to 0.9 of ``radius`` (default the
    inscribed radius) along the angle, to a fraction of 0.5 degree."""
    reference = np.asarray(reference, np.float64)
    r = inscribed_radius(reference.shape, center) if radius is None else radius
    radii = np.linspace(0.15 * r, 0.9 * r, max(4, int(0.75 * r)))
    weights = radii[:, None]
    ref = np.fft.rfft(
        _ring_normalised(_polar(reference, center, radii, n_theta)) * weights, axis=1
    )
    out = np.empty(len(frames))
    for i, f in enumerate(frames):
        p = np.fft.rfft(_ring_normalised(_polar(f, center, radii, n_theta)), axis=1)
        corr = np.fft.irfft((p * np.conj(ref)).sum(axis=0), n=n_theta)
        k = _peak(corr)
        out[i] = k * 360.0 / n_theta
    return wrap_degrees(out)


def register_shift(images, reference) -> np.ndarray:
    """``(n, 2)`` shifts (row, col; pixels, sub-pixel) of each of
    ``images`` relative to ``reference`` (phase correlation; NaN taken as
    the image's mean)."""

    def prep(a):
        a = np.asarray(a, np.float64)
        a = np.where(np.isfinite(a), a, np.nanmean(a))
        a = a - a.mean()
        win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
        return np.fft.fft2(a * win)

    ref = prep(reference)
    out = np.zeros((len(images), 2))
    for i, img in enumerate(images):
        cross = prep(img) * np.conj(ref)
        cross /= np.maximum(np.abs(cross), 1e-12)
        c = np.fft.ifft2(cross).real
        peak = np.unravel_index(int(np.argmax(c)), c.shape)
        for ax in range(2):
            line = c[:, peak[1]] if ax == 0 else c[peak[0], :]
            k = _peak(line)
            n = c.shape[ax]
            out[i, ax] = k - n if k > n / 2 else k
    return out


# --------------------------------------------------------------- measures


def _bin_images(frames, angles, mask, fill, bin_degrees):
    """Mean image (inside ``mask``'s box) of every angle bin with frames."""
    nb = max(2, int(round(360.0 / bin_degrees)))
    bins = np.floor(np.mod(angles, 360.0) / (360.0 / nb) + 0.5).astype(np.intp) % nb
    used = np.unique(bins)
    means = []
    for b in used:
        stack = np.asarray(frames[bins == b], np.float64)
        stack = np.where(_blank(stack, fill), np.nan, stack)
        with np.errstate(invalid="ignore"), _quiet():
            means.append(np.nanmean(stack, axis=0))
    return used * (360.0 / nb), np.array(means), bins


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def _blank(stack, fill) -> np.ndarray:
    fill = float(fill)
    return np.isnan(stack) if math.isnan(fill) else (stack == fill)


def _residual_motion(means, mask, sigma=1.0):
    """The centre search's objective on bin means: overall and per bin."""
    img = np.array(means, np.float64)
    missing = np.isnan(img).any(axis=0) | ~mask
    if (~missing).sum() < 16 or len(img) < 2:
        return None, []
    img[:, missing] = img[:, ~missing].mean(axis=1)[:, None]
    if sigma > 0:
        img = ndimage.gaussian_filter(img, (0, sigma, sigma))
    z = img[:, ~missing]
    z = z - z.mean(axis=1, keepdims=True)
    z /= np.maximum(np.sqrt((z * z).mean(axis=1, keepdims=True)), 1e-12)
    zbar = z.mean(axis=0)
    norms = (z * z).sum(axis=1)
    overall = float(((z - zbar) ** 2).sum() / norms.sum())
    per_bin = ((z - zbar) ** 2).sum(axis=1) / norms
    return overall, [float(v) for v in per_bin]


def _fit(y, *columns):
    """Least squares ``y ~ 1 + columns``: coefficients and their sds."""
    x = np.column_stack([np.ones_like(y), *columns])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = max(1, len(y) - x.shape[1])
    resid = y - x @ coef
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(x.T @ x)
    sd = np.sqrt(np.maximum(np.diag(cov), 0))
    # a column without spread (no speed change) says nothing
    flat = np.ptp(x, axis=0) == 0
    flat[0] = False
    coef[flat], sd[flat] = 0.0, np.inf
    return coef, sd


def _speeds(line_angles, rows):
    a = np.asarray(line_angles, np.float64).reshape(-1, rows)
    if rows < 2:
        return np.zeros(len(a))
    step = wrap_degrees(np.diff(a, axis=1))
    return np.median(step, axis=1)


def assess(
    raw,
    derotated,
    line_angles,
    center,
    *,
    fill_value=0.0,
    center_uncertainty=None,
    angle_delay=0.0,
    bin_degrees=15.0,
    frames=None,
) -> dict:
    """Measure a derotation (see the module docstring).

    Parameters
    ----------
    raw, derotated : arrays (frames, rows, cols)
        The same frames before and after derotation (e.g. a sample of the
        movie's frames).
    line_angles : array (frames * rows,)
        The angles those frames' lines were derotated with (the delay
        applied), degrees.
    center : (row, col)
        The centre used.
    fill_value : float
        The output's value of pixels no line covered.
    center_uncertainty, angle_delay
        Reported as given (from the record).
    frames : array of int, optional
        The frames' indices in the movie (reported).

    Returns
    -------
    dict
        The JSON-ready report, ``warnings`` a list of sentences.
    """
    raw = np.asarray(raw)
    der = np.asarray(derotated)
    if der.ndim != 3 or raw.shape != der.shape:
        raise DerotationError(
            f"raw and derotated frames must be (frames, rows, cols) of one "
            f"shape; got {raw.shape} and {der.shape}"
        )
    n, rows, cols = der.shape
    angles = np.asarray(line_angles, np.float64)
    if angles.size != n * rows:
        raise DerotationError(
            f"line_angles: expected {n * rows} angles (frames x rows); got "
            f"{angles.size}"
        )
    center = (float(center[0]), float(center[1]))
    theta = angles.reshape(n, rows)[:, rows // 2]
    speed = _speeds(angles, rows)
    radius = inscribed_radius((rows, cols), center)
    yy, xx = np.mgrid[:rows, :cols]
    mask = (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= (0.9 * radius) ** 2
    blank = _blank(der.astype(np.float64), fill_value)
    if blank[:, mask].mean() > 0.9:
        raise DerotationError(
            f"nothing to measure: {100 * blank[:, mask].mean():.0f}% of the "
            f"pixels about the centre hold the fill value {fill_value:g}"
        )
    with _quiet():
        der_f = np.where(blank, np.nan, der.astype(np.float64))
        mean_der = np.nanmean(der_f, axis=0)
    mean_raw = raw.astype(np.float64).mean(axis=0)

    # the reference: the mean of the least-turned derotated frames
    turned = np.abs(wrap_degrees(theta))
    order = np.argsort(turned, kind="stable")
    least = order[turned[order] <= turned[order[0]] + REFERENCE_DEGREES][:64]
    with _quiet():
        reference = np.nanmean(der_f[least], axis=0)
    reference = np.where(np.isfinite(reference), reference, np.nanmean(reference))
    rotation = register_rotation(
        np.nan_to_num(der_f, nan=np.nanmean(reference)), reference, center, radius
    )

    bin_angles, means, labels = _bin_images(der, theta, mask, fill_value, bin_degrees)
    overall, per_bin = _residual_motion(means, mask)
    shifts = register_shift(
        [np.where(mask, m, np.nan) for m in means], np.where(mask, reference, np.nan)
    )

    warnings, fits = _diagnose(
        rotation, theta, turned, speed, bin_angles, shifts, center, angle_delay
    )
    return {
        "frames": None if frames is None else [int(f) for f in frames],
        "center_row_col": list(center),
        "center_uncertainty": None
        if center_uncertainty is None
        else [float(v) for v in center_uncertainty],
        "angle_delay": float(angle_delay),
        "blank_share": float(blank.mean()),
        "residual_motion": {
            "overall": overall,
            "bins": [
                {"angle": float(a), "value": v, "frames": int((labels == i).sum())}
                for i, (a, v) in enumerate(zip(bin_angles, per_bin, strict=False))
            ],
        },
        "residual_rotation": {
            "degrees": [round(float(v), 4) for v in rotation],
            "frame_angle": [round(float(v), 4) for v in theta],
            "speed_deg_per_line": [float(v) for v in speed],
            "sd": float(np.std(rotation)),
            "max_abs": float(np.abs(rotation).max()) if n else 0.0,
        },
        "bin_shifts_px": [
            [float(a), float(s[0]), float(s[1])]
            for a, s in zip(bin_angles, shifts, strict=True)
        ],
        "fits": fits,
        "warnings": warnings,
        "_images": {"raw_mean": mean_raw, "derotated_mean": mean_der},
    }


def _diagnose(rotation, theta, turned, speed, bin_angles, shifts, center, angle_delay):
    """``(warnings, fits)``: the measures turned into at most one cause."""
    warnings, fits = [], {}
    n = len(rotation)
    # a delay: residual rotation ~ speed (both fitted with the angle)
    small = turned <= 80  # -2 theta does not wrap
    use = small if small.sum() >= 6 else np.ones(n, bool)
    coef, sd = _fit(rotation[use], speed[use], wrap_degrees(theta[use]))
    spread = float(np.ptp(speed[use])) if use.any() else 0.0
    # a delay e not corrected turns a frame at speed w by -w * e
    delay_lines = -float(coef[1])
    fits["rotation_vs_speed_lines"] = delay_lines
    fits["rotation_vs_speed_sd"] = float(sd[1])
    fits["rotation_vs_angle"] = float(coef[2])
    fits["rotation_vs_angle_sd"] = float(sd[2])
    # flipped angles turn a frame at angle theta by -2 theta (mod 360)
    far = turned > 5
    sign_match = None
    if far.sum() >= 3:
        sign_match = float(
            min(
                np.median(np.abs(wrap_degrees(rotation[far] - m * theta[far])))
                for m in (2.0, -2.0)
            )
        )
    fits["flipped_sign_mismatch_deg"] = sign_match
    sign_bad = (abs(coef[2]) > SIGN_WARN_SLOPE and abs(coef[2]) > 3 * sd[2]) or (
        sign_match is not None and sign_match < 2.0
    )
    # a wrong centre: bin shifts = (R(theta) - I) (true centre - centre)
    err = _centre_error(bin_angles, shifts)
    fits["center_error_px"] = None if err is None else [float(v) for v in err]
    centre_bad = err is not None and float(np.hypot(*err)) > CENTER_WARN_PX
    delay_bad = (
        abs(delay_lines) * spread > DELAY_WARN_DEGREES and abs(delay_lines) > 3 * sd[1]
    )
    # one cause at a time: a flipped sign also displaces the bins, and the
    # rotation measured about a wrong centre is not the frames' rotation
    if sign_bad:
        warnings.append(
            f"wrong sign: the residual rotation follows the angle "
            f"({coef[2]:+.2f} degree per degree, alternating with the "
            f"direction of rotation; flipped angles give -2 or +2): the "
            f"angles' sign looks flipped; derotate with the angles negated"
        )
    elif centre_bad:
        warnings.append(
            f"wrong centre: the angle bins' means are displaced as a centre "
            f"{np.hypot(*err):.1f} px off would displace them (cells smear "
            f"into rings of that radius in the mean): the centre looks "
            f"nearer ({center[0] + err[0]:.1f}, {center[1] + err[1]:.1f}) "
            f"than ({center[0]:.1f}, {center[1]:.1f}); search it again "
            f"(find-center)"
        )
    elif delay_bad:
        warnings.append(
            f"delay: the residual rotation grows with the speed of rotation "
            f"({abs(delay_lines) * spread:.2f} degrees between the slowest "
            f"and fastest frames): an angle delay of about "
            f"{delay_lines:+.1f} lines is not corrected (angle_delay "
            f"{angle_delay + delay_lines:.1f} instead of {angle_delay:g}; "
            f"find-center --delay measures it)"
        )

    return warnings, fits


def _centre_error(bin_angles, shifts):
    """The centre offset ``e`` (row, col) that best explains the bins'
    shifts as ``(R(theta) - I) e``; None with fewer than 3 bins."""
    if len(bin_angles) < 3:
        return None
    t = np.deg2rad(np.asarray(bin_angles))
    c, s = np.cos(t) - 1.0, np.sin(t)
    # (row, col) shift of a point displaced by e under the package's turn
    a = np.zeros((2 * len(t), 2))
    a[0::2, 0], a[0::2, 1] = c, -s
    a[1::2, 0], a[1::2, 1] = s, c
    y = np.asarray(shifts, np.float64).ravel()
    e, *_ = np.linalg.lstsq(a, y, rcond=None)
    return e


# ------------------------------------------------------------------ files


def _open(path):
    from .io.sources import open_movie

    return open_movie(path)


def _sample(n: int, max_frames: int) -> np.ndarray:
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(np.intp))


def _read(src, index, channel=0, plane=0):
    out = [np.asarray(src.read(int(i), int(i) + 1))[0, plane, channel] for i in index]
    return np.stack(out)


def report_for_output(
    out_path, *, record=None, angles_per_line=None, max_frames=MAX_FRAMES
) -> dict:
    """The report of a derotated output (TIFF or OME-Zarr): its record
    (``OUT.derotation.json``, or ``record``) names the input movie and the
    angles' source (or ``angles_per_line`` gives them), the centre, the
    fill value and the delay. At most ``max_frames`` frames, spread over the
    movie, are measured (channel 0, plane 0)."""
    from .engine._driver import line_angles
    from .engine.params import DerotationParams
    from .io import load_angles
    from .io.provenance import sidecar_path

    out_path = Path(out_path)
    if record is None and not sidecar_path(out_path).is_file() and out_path.exists():
        with _open(out_path) as dst:  # a record kept inside (Zarr)
            record = dst.metadata.get("record")
    if record is None:
        rp = sidecar_path(out_path)
        if not rp.is_file():
            raise DerotationError(
                f"no record beside {out_path.name}: expected {rp.name} (what "
                f"derotate and run write)"
            )
        try:
            record = json.loads(rp.read_text())
        except ValueError as exc:
            raise DerotationError(f"cannot read {rp.name}: {exc}") from None
    movie = (record.get("input") or {}).get("path")
    if not movie:
        raise DerotationError("the record names no input movie (input.path)")
    if angles_per_line is None:
        source = (record.get("pipeline") or {}).get("outputs", {}).get(
            "angles_per_line"
        ) or (record.get("angles") or {}).get("source")
        if not source or not Path(source).is_file():
            raise DerotationError(
                f"the record's angle source is not a file: {source!r}; give "
                f"the angles (--angles)"
            )
        angles_per_line = load_angles(source)
    files = [
        f.get("path")
        for f in (record.get("input") or {}).get("files") or []
        if f.get("path")
    ]
    if len(files) > 1:
        movie = files
    params = DerotationParams.from_record(record)
    with _open(movie) as src, _open(out_path) as dst:
        if tuple(src.shape) != tuple(dst.shape):
            raise DerotationError(
                f"the output's shape {tuple(dst.shape)} is not the input's "
                f"{tuple(src.shape)}"
            )
        t, z, c, rows, cols = src.shape
        frames = _sample(t, max_frames)
        raw = _read(src, frames)
        der = _read(dst, frames)
    angles, _ = line_angles(angles_per_line, (t * z, rows), params)
    idx = ((frames[:, None] * z) * rows + np.arange(rows)).ravel()
    fill = params.fills(c)[0]
    search = ((record.get("pipeline") or {}).get("center") or {}).get("search") or {}
    rep = assess(
        raw,
        der,
        angles[idx],
        params.center or (rows // 2, cols // 2),
        fill_value=fill,
        center_uncertainty=search.get("uncertainty"),
        angle_delay=params.angle_delay,
        frames=frames,
    )
    rep["output"] = str(out_path.resolve())
    rep["input"] = str(movie)
    return rep


def write_report(
    report: dict, out_path, *, overwrite=True, on_written=None
) -> list[Path]:
    """Write ``OUT.qc.json`` and ``OUT.qc.png`` (needs matplotlib) for the
    output ``out_path``, each atomically; returns their paths
    (``on_written(path)`` is called for each as it is put in place)."""
    from .io.atomic import atomic_path, check_writable, write_json

    json_path, png_path = report_paths(out_path)
    check_writable([json_path, png_path], overwrite=overwrite)
    images = report.get("_images", {})
    data = {k: v for k, v in report.items() if not k.startswith("_")}
    written = []
    written.append(write_json(json_path, data))
    if on_written:
        on_written(json_path)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DerotationError(
            f"wrote {json_path.name}; {png_path.name} needs matplotlib (pip "
            f"install 'napari-derotation[plots]')"
        ) from None
    with atomic_path(png_path) as tmp:
        _figure(data, images, tmp)
    written.append(png_path)
    if on_written:
        on_written(png_path)
    return written


def write_beside(out_path, record, angles_per_line, *, on_written=None) -> dict:
    """The report of a run's output, written beside it (what ``run`` and
    ``batch`` call): ``{"files", "warnings", "note"}`` for the run's record.
    An output it cannot read (NWB) or a report it cannot make is a note,
    not a failure of the run."""
    fmt = str(out_path).lower()
    if fmt.endswith(".nwb"):
        return {
            "files": [],
            "warnings": [],
            "note": "no quality report for an NWB output (qc reads "
            "TIFF and OME-Zarr outputs)",
        }
    try:
        rep = report_for_output(
            out_path, record=record, angles_per_line=angles_per_line
        )
    except DerotationError as exc:
        return {"files": [], "warnings": [], "note": f"no quality report: {exc}"}
    files: list[Path] = []

    def written(p):
        files.append(Path(p))
        if on_written:
            on_written(p)

    note = None
    try:
        write_report(rep, out_path, on_written=written)
    except DerotationError as exc:
        note = str(exc)
    return {"files": [str(p) for p in files], "warnings": rep["warnings"], "note": note}


def _figure(rep, images, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(13, 8), layout="constrained")
    for a, key, title in (
        (ax[0, 0], "raw_mean", "raw mean"),
        (ax[0, 1], "derotated_mean", "derotated mean"),
    ):
        img = images.get(key)
        if img is not None:
            lo, hi = np.nanpercentile(img, [1, 99.5])
            a.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            r, c = rep["center_row_col"]
            a.plot([c], [r], "+", color="tab:red", ms=10)
        a.set_title(title)
        a.set_axis_off()
    rot = rep["residual_rotation"]
    frames = rep["frames"] or list(range(len(rot["degrees"])))
    a = ax[0, 2]
    a.plot(frames, rot["degrees"], ".-", ms=3, color="tab:blue")
    a.set_xlabel("frame")
    a.set_ylabel("residual rotation (deg)", color="tab:blue")
    a2 = a.twinx()
    a2.plot(frames, rot["frame_angle"], color="0.6", lw=0.8)
    a2.set_ylabel("angle (deg)", color="0.4")
    a.set_title("residual rotation per frame")
    a = ax[1, 0]
    a.scatter(rot["speed_deg_per_line"], rot["degrees"], s=8)
    a.set_xlabel("speed (deg/line)")
    a.set_ylabel("residual rotation (deg)")
    a.set_title("residual rotation vs speed")
    a = ax[1, 1]
    bins = rep["residual_motion"]["bins"]
    a.bar([b["angle"] for b in bins], [b["value"] for b in bins], width=10)
    a.set_xlabel("angle bin (deg)")
    a.set_ylabel("residual motion")
    overall = rep["residual_motion"]["overall"]
    a.set_title(
        "residual motion per angle bin (overall "
        + ("n/a" if overall is None else f"{overall:.3g}")
        + ")"
    )
    a = ax[1, 2]
    a.set_axis_off()
    cu = rep.get("center_uncertainty")
    lines = [
        f"centre (row, col): ({rep['center_row_col'][0]:.2f}, "
        f"{rep['center_row_col'][1]:.2f})"
        + ("" if not cu else f" +- ({cu[0]:.2f}, {cu[1]:.2f})"),
        f"angle delay: {rep['angle_delay']:g} lines",
        f"blank share: {100 * rep['blank_share']:.1f}%",
        f"residual rotation sd: {rot['sd']:.3f} deg",
        "",
    ]
    lines += (
        ["warnings:"] + [f"- {w}" for w in rep["warnings"]]
        if rep["warnings"]
        else ["no warnings"]
    )
    import textwrap

    text = "\n".join(textwrap.fill(s, 48, subsequent_indent="  ") for s in lines)
    a.text(0, 1, text, va="top", ha="left", family="monospace", fontsize=8)
    fig.savefig(path, dpi=80, format="png")
    plt.close(fig)
