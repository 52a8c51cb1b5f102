"""Angle sources other than ticks (rotation_source): encoder, position, motor
log, per-frame angles. Accuracy against the recorder's true angles, the bad
inputs each source must refuse, and the ``angles`` command."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_derotation.acquisition import angle_sources
from napari_derotation.acquisition.encoder import decode_quadrature
from napari_derotation.acquisition.frame_angles import corner_knots
from napari_derotation.acquisition.linetimes import (
    scanimage_line_times,
    scanimage_timestamps,
)
from napari_derotation.cli import main
from napari_derotation.errors import DerotationError
from napari_derotation.io import sidecar_path, write_tiff
from napari_derotation.pipeline import Dataset, run_dataset
from napari_derotation.pipeline.config import Config, load_config
from napari_derotation.simulate.recorder import BIN_CHANNELS, simulate_recording

EXTRA = ("PI_encA", "PI_encB", "motor_pos")
NAMES = BIN_CHANNELS + EXTRA
DPV = 40.0  # degrees per volt: +-360 degrees within +-9 V
COLS = 4  # the movie's width: only its shape is read here


def wrap(d):
    return (np.asarray(d) + 180.0) % 360.0 - 180.0


@pytest.fixture(scope="module")
def rec():
    return simulate_recording(
        speeds=(200, 200), directions=(-1, 1), noise=0.005, seed=7
    )


def rotation_lines(rec):
    """Lines scanned while the motor turned."""
    ok = np.zeros(len(rec.line_starts), bool)
    for a, b in rec.motion:
        ok |= (rec.line_starts >= a) & (rec.line_starts <= b)
    return ok


def within(angles, rec, tol):
    """Fraction of the rotations' lines within ``tol`` of the truth."""
    err = np.abs(wrap(np.asarray(angles) - rec.angles_per_line))
    return float(np.mean(err[rotation_lines(rec)] <= tol))


def write_dataset(folder, rec, kind="bin", *, encoder=None, position=None):
    folder.mkdir(parents=True, exist_ok=True)
    write_tiff(
        folder / "movie.tif", np.zeros((rec.n_frames, rec.rows, COLS), np.uint16)
    )
    a, b = encoder if encoder is not None else rec.encoder(8000, noise=0.005)
    pos = position if position is not None else rec.position(DPV, noise=0.005)
    if kind == "bin":
        path = rec.write_bin(
            folder / "rotation.bin",
            NAMES,
            extra=dict(zip(EXTRA, (a, b, pos), strict=True)),
        )
    else:
        path = rec.write_npy(folder / "signals.npy", extra=(a, b, pos))
    return folder / "movie.tif", path


def config(movie, signals, **kw):
    kw.setdefault("channel_names", NAMES)
    kw.setdefault("sampling_rate", 50_000.0)
    return Config(movie=movie, signals=signals, **kw).check()


def angles(cfg):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = Dataset(cfg).compute_angles()
    return res, [str(w.message) for w in caught]


# ------------------------------------------------------------------ accuracy


@pytest.mark.parametrize("kind", ["bin", "npy"])
def test_encoder_within_a_tenth_of_a_degree(rec, tmp_path, kind):
    movie, sig = write_dataset(tmp_path, rec, kind)
    chans = ("PI_encA", "PI_encB") if kind == "bin" else (4, 5)
    res, notes = angles(
        config(
            movie,
            sig,
            rotation_source="encoder",
            encoder_channel_a=chans[0],
            encoder_channel_b=chans[1],
            encoder_counts_per_turn=8000,
        )
    )
    assert within(res.angles_per_line, rec, 0.1) >= 0.99
    assert (
        np.abs(wrap(res.angles_per_line - rec.angles_per_line)).max()
        <= 360 / 8000 + 1e-9
    )  # at most one count
    assert res.source == "encoder" and res.details["glitches"] == 0
    assert not notes
    assert np.array_equal(res.line_clock, rec.line_starts)
    # two rotations found in the angles, -1 then +1 (the tick convention)
    assert list(res.direction) == [-1, 1]
    assert np.allclose(res.measured_speed, 200, rtol=0.02)
    table = res.frame_table()
    assert set(table["rotation_count"][~np.isnan(table["rotation_count"])]) == {0, 1}


def test_encoder_direction_flips_the_sign(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec, encoder=rec.encoder(8000, direction=-1))
    base = dict(
        rotation_source="encoder",
        encoder_channel_a="PI_encA",
        encoder_channel_b="PI_encB",
        encoder_counts_per_turn=8000,
    )
    right, _ = angles(config(movie, sig, encoder_direction=-1, **base))
    wrong, _ = angles(config(movie, sig, **base))
    assert within(right.angles_per_line, rec, 0.1) >= 0.99
    assert np.allclose(wrong.angles_per_line, -right.angles_per_line)


def test_encoder_glitches_are_counted_and_reported(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec, encoder=rec.encoder(8000, glitches=3))
    res, notes = angles(
        config(
            movie,
            sig,
            rotation_source="encoder",
            encoder_channel_a="PI_encA",
            encoder_channel_b="PI_encB",
            encoder_counts_per_turn=8000,
        )
    )
    # each glitch flips both channels and back: two double changes
    assert res.details["glitches"] == 6
    assert any("6 glitches" in n for n in notes)
    assert any("6 glitches" in n for n in res.warnings)
    assert within(res.angles_per_line, rec, 0.1) >= 0.99


def test_quadrature_decoding_counts_both_ways():
    # the Gray sequence 00 10 11 01 forwards twice, then back once
    states = [(0, 0), (1, 0), (1, 1), (0, 1)] * 2 + [(0, 0)]
    seq = states + states[-2::-1]
    a = np.repeat([s[0] for s in seq], 3) * 5.0
    b = np.repeat([s[1] for s in seq], 3) * 5.0
    edges, counts, glitches = decode_quadrature(a, b, chunk=7)
    assert list(counts) == list(range(1, 9)) + list(range(7, -1, -1))
    assert not glitches.size
    assert np.array_equal(edges, np.arange(1, len(seq)) * 3)


@pytest.mark.parametrize("kind", ["bin", "npy"])
def test_position_within_a_tenth_of_a_degree_at_5_mV_noise(rec, tmp_path, kind):
    pos = rec.position(DPV, offset_volts=0.5, noise=0.005)
    movie, sig = write_dataset(tmp_path, rec, kind, position=pos)
    res, notes = angles(
        config(
            movie,
            sig,
            rotation_source="position",
            position_channel="motor_pos" if kind == "bin" else 6,
            position_degrees_per_volt=DPV,
            position_offset_volts=0.5,
        )
    )
    assert within(res.angles_per_line, rec, 0.1) >= 0.99
    # the recorder's sensor wraps after each whole turn: unwrapped, reported
    assert res.details["wraps"] == 2 and any("wrapping" in n for n in notes)
    # without smoothing the noise alone (0.2 degree per sample) fails
    raw, _ = angles(
        config(
            movie,
            sig,
            rotation_source="position",
            position_channel="motor_pos" if kind == "bin" else 6,
            position_degrees_per_volt=DPV,
            position_offset_volts=0.5,
            position_smoothing_samples=1,
        )
    )
    assert within(raw.angles_per_line, rec, 0.1) < 0.5


@pytest.mark.parametrize("clock", ["line_clock", "frame_rate", "scanimage"])
def test_log_within_a_tenth_of_a_degree(rec, tmp_path, clock):
    movie, sig = write_dataset(tmp_path, rec)
    # the controller's clock runs 12.5 s ahead of the analog file's
    log = rec.write_log(
        tmp_path / "rotation_log.csv", rate=1000, offset_s=12.5, jitter_s=1e-4
    )
    t_first = rec.line_starts[0] / rec.sampling_rate
    offset = 12.5 if clock == "line_clock" else 12.5 + t_first
    cfg = config(
        movie,
        None if clock != "line_clock" else sig,
        rotation_source="log",
        log_path=log,
        log_clock=clock,
        log_offset_s=offset,
        frame_rate=rec.params["frame_rate"],
    )
    if clock == "scanimage":
        lp = 1 / (rec.params["frame_rate"] * rec.rows)
        stamps = np.arange(rec.n_frames) * rec.rows * lp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = angle_sources.compute_angles(
                cfg,
                n_frames=rec.n_frames,
                rows=rec.rows,
                frame_timestamps=stamps,
                line_period=lp,
            )
    else:
        res, _ = angles(cfg)
    assert within(res.angles_per_line, rec, 0.1) >= 0.99
    assert len(res.angles_per_frame) == rec.n_frames


def test_log_as_tsv_with_other_column_names(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec)
    log = rec.write_log(
        tmp_path / "log.tsv",
        rate=500,
        delimiter="\t",
        time_column="t",
        angle_column="deg",
    )
    res, _ = angles(
        config(
            movie,
            sig,
            rotation_source="log",
            log_path=log,
            log_time_column="t",
            log_angle_column="deg",
        )
    )
    assert within(res.angles_per_line, rec, 0.1) >= 0.99


@pytest.mark.parametrize("frame_rate, rows", [(30.0, 32), (6.74, 256)])
def test_frame_angles_within_half_a_degree(tmp_path, frame_rate, rows):
    rec = simulate_recording(
        speeds=(200, 200), directions=(-1, 1), frame_rate=frame_rate, rows=rows
    )
    write_tiff(tmp_path / "movie.tif", np.zeros((rec.n_frames, rows, COLS), np.uint16))
    fa = rec.write_frame_angles(tmp_path / "angles_per_frame.npy")
    cfg = Config(
        movie=tmp_path / "movie.tif",
        rotation_source="frame_angles",
        frame_angles_path=fa,
    ).check()
    res, notes = angles(cfg)
    assert within(res.angles_per_line, rec, 0.5) >= 0.99
    # it says what it cannot know: the largest change within one frame
    big = np.abs(np.diff(np.unwrap(rec.angles_per_frame, period=360))).max()
    assert any(f"largest change within one frame is {big:.3g}" in n for n in notes)
    # plain linear interpolation between frames is not enough here
    lin = np.interp(
        np.arange(len(rec.line_starts)) / rows,
        np.arange(rec.n_frames),
        np.unwrap(rec.angles_per_frame, period=360),
    )
    assert within(lin, rec, 0.5) < 0.99


def test_corner_knots_exact_for_piecewise_constant_speed():
    t = np.arange(10.0)
    truth = lambda x: np.clip(x - 3.4, 0, None) * 7.0  # noqa: E731
    kt, ka = corner_knots(t, truth(t))
    x = np.linspace(0, 9, 400)
    assert np.allclose(np.interp(x, kt, ka), truth(x))
    # noise never takes a knot outside the two readings around it
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 50)
    kt, ka = corner_knots(np.arange(50.0), a)
    i = np.searchsorted(np.arange(50.0), kt, side="right") - 1
    inner = kt != np.round(kt)
    lo = np.minimum(a[i[inner]], a[i[inner] + 1])
    hi = np.maximum(a[i[inner]], a[i[inner] + 1])
    assert np.all((ka[inner] >= lo) & (ka[inner] <= hi))


def test_ticks_stay_the_default_and_unchanged(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec)
    rec.write_stimulus(tmp_path / "stim.csv")
    cfg = config(movie, sig, stimulus=tmp_path / "stim.csv")
    assert cfg.rotation_source == "ticks"
    assert not any(
        k in cfg.to_dict() for k in ("rotation_source", "encoder", "position", "log")
    )
    res, _ = angles(cfg)
    assert res.source == "ticks" and len(res.ticks) > 0


# -------------------------------------------------------------- bad inputs


def raises(cfg, match, **kw):
    with pytest.raises(DerotationError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kw:
            angle_sources.compute_angles(cfg, **kw)
        else:
            Dataset(cfg).compute_angles()


def test_missing_channels_are_named(rec, tmp_path):
    movie, sig = write_dataset(tmp_path / "b", rec)
    raises(
        config(
            movie,
            sig,
            rotation_source="encoder",
            encoder_channel_a="PI_encX",
            encoder_channel_b="PI_encB",
            encoder_counts_per_turn=8000,
        ),
        r"encoder.channel_a: channel 'PI_encX' is not in the file: "
        r"expected one of channel_names",
    )
    movie, sig = write_dataset(tmp_path / "n", rec, "npy")
    raises(
        config(
            movie,
            sig,
            rotation_source="position",
            position_channel=9,
            position_degrees_per_volt=DPV,
        ),
        r"position.channel: expected a row 0-6 of signals.npy .* got row 9",
    )
    raises(
        config(
            movie,
            sig,
            rotation_source="position",
            position_channel="motor_pos",
            position_degrees_per_volt=DPV,
        ),
        r"addressed by row; expected a row number 0-6; got 'motor_pos'",
    )


def test_an_encoder_channel_that_never_changes(rec, tmp_path):
    a, b = rec.encoder(8000)
    movie, sig = write_dataset(tmp_path, rec, encoder=(a, np.full_like(b, 2.5)))
    raises(
        config(
            movie,
            sig,
            rotation_source="encoder",
            encoder_channel_a="PI_encA",
            encoder_channel_b="PI_encB",
            encoder_counts_per_turn=8000,
        ),
        r"encoder channel_b 'PI_encB' never changes: expected a quadrature "
        r"square wave",
    )


def test_a_position_outside_the_stated_range(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec, position=rec.position(DPV))
    raises(
        config(
            movie,
            sig,
            rotation_source="position",
            position_channel="motor_pos",
            position_degrees_per_volt=DPV,
            position_range_volts=(-5.0, 5.0),
        ),
        r"expected volts within range_volts \[-5, 5\]; found .* V at "
        r"sample \d+",
    )


def test_log_times_backwards_or_not_covering(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec)
    t, a = rec.log_table(100)
    bad = tmp_path / "back.csv"
    t2 = t.copy()
    t2[50] = t2[48]
    np.savetxt(bad, np.c_[t2, a], delimiter=",", header="time_s,angle_deg", comments="")
    raises(
        config(movie, sig, rotation_source="log", log_path=bad),
        r"times must increase; row 52 has time_s .* after",
    )
    short = tmp_path / "short.csv"
    np.savetxt(
        short,
        np.c_[t[:200], a[:200]],
        delimiter=",",
        header="time_s,angle_deg",
        comments="",
    )
    raises(
        config(movie, sig, rotation_source="log", log_path=short),
        r"does not cover the acquisition: the log covers 0-1.99 s; the "
        r"lines, on the line_clock clock .* span",
    )
    good = rec.write_log(tmp_path / "log.csv")
    raises(
        config(movie, sig, rotation_source="log", log_path=good, log_offset_s=1000.0),
        r"cannot align the log's clock with the acquisition: .* no overlap",
    )
    raises(
        config(movie, sig, rotation_source="log", log_path=good, sampling_rate=None),
        r"cannot align the log's clock with the line clock without "
        r"sampling_rate",
    )
    raises(
        config(
            movie, sig, rotation_source="log", log_path=good, log_clock="frame_rate"
        ),
        r"cannot align the clocks from the frame rate: expected frame_rate",
    )
    # a plain TIFF has no ScanImage timestamps
    raises(
        config(movie, sig, rotation_source="log", log_path=good, log_clock="scanimage"),
        r"movie.tif: expected ScanImage metadata \(frameTimestamps_sec",
    )
    with pytest.raises(DerotationError, match="expected columns 'time' and"):
        from napari_derotation.acquisition.log import read_log

        read_log(good, "time", "angle_deg")


def test_frame_angles_of_the_wrong_count(rec, tmp_path):
    write_tiff(
        tmp_path / "movie.tif", np.zeros((rec.n_frames, rec.rows, COLS), np.uint16)
    )
    np.save(tmp_path / "fa.npy", rec.angles_per_frame[:-1])
    cfg = Config(
        movie=tmp_path / "movie.tif",
        rotation_source="frame_angles",
        frame_angles_path=tmp_path / "fa.npy",
    ).check()
    raises(
        cfg,
        rf"expected one angle per frame, {rec.n_frames} \(the movie's "
        rf"frames\); found {rec.n_frames - 1}",
    )


def test_scanimage_line_times_and_reading():
    lt = scanimage_line_times([0.0, 0.1, 0.2], 0.01, 4)
    assert np.allclose(lt.lines[:5], [0, 0.01, 0.02, 0.03, 0.1])
    with pytest.raises(DerotationError, match="timestamps must increase"):
        scanimage_line_times([0.0, 0.1, 0.1], 0.01, 4)
    with pytest.raises(DerotationError, match="rows x period within a frame"):
        scanimage_line_times([0.0, 0.1], 0.05, 4)


def test_scanimage_timestamps_from_frame_descriptions(tmp_path):
    import tifffile

    path = tmp_path / "si.tif"
    with tifffile.TiffWriter(path) as tw:
        for i in range(3):
            tw.write(
                np.zeros((4, 4), np.uint16),
                contiguous=False,
                description=f"frameNumbers = {i + 1}\n"
                f"frameTimestamps_sec = {0.5 * i:.6f}\n",
            )
    with pytest.raises(DerotationError, match="found 3 timestamps and no line"):
        scanimage_timestamps(path)


def test_config_keys_nested_and_required(tmp_path):
    text = (
        "rotation_source: encoder\n"
        "encoder: {channel_a: PI_encA, channel_b: PI_encB, "
        "counts_per_turn: 8000, direction: -1}\n"
        "position: {channel: motor_pos, degrees_per_volt: 36.0, "
        "offset_volts: 0.0}\n"
        "log: {path: rotation_log.csv, time_column: time_s, angle_column: "
        "angle_deg, clock: line_clock, log_offset_s: 2.5}\n"
        "frame_angles: {path: angles_per_frame.npy}\n"
    )
    (tmp_path / "c.yml").write_text(text)
    cfg = load_config(tmp_path / "c.yml", warn=False)
    assert cfg.encoder_counts_per_turn == 8000 and cfg.encoder_direction == -1
    assert cfg.log_path == tmp_path / "rotation_log.csv"
    assert cfg.log_offset_s == 2.5 and not cfg.warnings
    d = cfg.to_dict()
    assert d["rotation_source"] == "encoder" and "log" not in d
    assert Config.from_dict(d).encoder_channel_a == "PI_encA"
    for data, match in (
        ({"rotation_source": "laser"}, "rotation_source: expected one of"),
        (
            {"rotation_source": "encoder"},
            "encoder.channel_a: required with rotation_source: encoder",
        ),
        (
            {"rotation_source": "log", "log": {"path": "x.csv", "clock": "gps"}},
            "log.clock: expected one of",
        ),
        ({"encoder": {"direction": 2}}, "encoder.direction: expected 1"),
        ({"position": {"channel": 1.5}}, "position.channel"),
    ):
        with pytest.raises(DerotationError, match=match):
            Config.from_dict(data)


# -------------------------------------------------------------- commands


def write_config(folder, movie, sig, source_block):
    text = (
        f"paths_read: {{path_to_tif: {movie.name}, path_to_aux: "
        f"{sig.name}}}\nsampling_rate: 50000\n"
        f"channel_names: [{', '.join(NAMES)}]\n{source_block}"
    )
    (folder / "c.yml").write_text(text)
    return folder / "c.yml"


ENCODER = (
    "rotation_source: encoder\nencoder: {channel_a: PI_encA, "
    "channel_b: PI_encB, counts_per_turn: 8000}\n"
)


def test_angles_command_writes_the_angles_and_a_plot(rec, tmp_path, capsys):
    movie, sig = write_dataset(tmp_path, rec)
    cfg = write_config(tmp_path, movie, sig, ENCODER)
    out, png = tmp_path / "out" / "a.npy", tmp_path / "a.png"
    assert main(["angles", str(cfg), "-o", str(out), "--plot", str(png)]) == 0
    got = np.load(out)
    assert within(got, rec, 0.1) >= 0.99
    assert png.read_bytes()[:4] == b"\x89PNG"
    import json

    meta = json.loads(sidecar_path(out).read_text())
    assert meta["config"]["rotation_source"] == "encoder"
    assert set(meta["inputs"]) == {"signals", "config"}
    # the one header every record of the package starts with
    assert {"software", "version", "created"} <= set(meta)
    assert str(out) in capsys.readouterr().out
    # run uses the same code: the same angles
    record = run_dataset(load_config(cfg, warn=False), tmp_path / "run", plots=False)
    assert np.array_equal(np.load(tmp_path / "run" / "angles_per_line.npy"), got)
    assert record["pipeline"]["signals"]["source"]["rotation_source"] == "encoder"


@pytest.mark.parametrize(
    "block, match",
    [
        (
            "rotation_source: encoder\nencoder: {channel_a: PI_encA, channel_b: "
            "nope, counts_per_turn: 8000}\n",
            "channel 'nope' is not in the file",
        ),
        (
            "rotation_source: position\nposition: {channel: motor_pos, "
            "degrees_per_volt: 40, range_volts: [-1, 1]}\n",
            "expected volts within range_volts",
        ),
    ],
)
def test_angles_command_bad_input_one_line_exit_2(rec, tmp_path, capsys, block, match):
    movie, sig = write_dataset(tmp_path, rec)
    cfg = write_config(tmp_path, movie, sig, block)
    out = tmp_path / "a.npy"
    assert (
        main(["angles", str(cfg), "-o", str(out), "--plot", str(tmp_path / "a.png")])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert err[0].startswith("napari-derotation: error:")
    assert not out.exists() and not (tmp_path / "a.png").exists()
    assert not sidecar_path(tmp_path / "a.npy").exists()


def test_batch_uses_the_same_sources_per_folder(rec, tmp_path, capsys):
    # one shared config; each folder has its own analog file / frame angles
    text = f"sampling_rate: 50000\nchannel_names: [{', '.join(NAMES)}]\n{ENCODER}"
    (tmp_path / "enc.yml").write_text(text)
    (tmp_path / "fa.yml").write_text(
        "rotation_source: frame_angles\nframe_angles: {path: angles_per_frame.npy}\n"
    )
    write_dataset(tmp_path / "d_enc", rec)
    fa = tmp_path / "d_fa"
    fa.mkdir()
    write_tiff(fa / "movie.tif", np.zeros((rec.n_frames, rec.rows, COLS), np.uint16))
    rec.write_frame_angles(fa / "angles_per_frame.npy")
    for cfg, folder, tol in (("enc.yml", "d_enc", 0.1), ("fa.yml", "d_fa", 0.5)):
        assert (
            main(
                [
                    "batch",
                    str(tmp_path / cfg),
                    str(tmp_path / folder),
                    "--quiet",
                    "--no-plots",
                ]
            )
            == 0
        ), capsys.readouterr().err
        got = np.load(tmp_path / folder / "derotation" / "angles_per_line.npy")
        assert within(got, rec, tol) >= 0.99


def test_frame_angles_timed_by_the_line_clock(rec, tmp_path):
    movie, sig = write_dataset(tmp_path, rec)
    fa = rec.write_frame_angles(tmp_path / "fa.npy")
    res, _ = angles(
        config(
            movie,
            sig,
            rotation_source="frame_angles",
            frame_angles_path=fa,
            frame_angles_clock="line_clock",
        )
    )
    assert within(res.angles_per_line, rec, 0.5) >= 0.99
    assert np.array_equal(res.line_clock, rec.line_starts)
