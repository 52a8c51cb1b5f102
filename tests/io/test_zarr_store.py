"""OME-Zarr outputs and inputs: written atomically (also by cluster workers),
NGFF 0.4 metadata, read back lazily, derotated again, refused when bad."""

from __future__ import annotations

import json
import os

import distributed
import numpy as np
import pytest
import tifffile
import zarr

from napari_derotation import Cancelled, DerotationError
from napari_derotation.cli import main
from napari_derotation.engine.cluster import derotate_file_distributed
from napari_derotation.engine.files import derotate_file
from napari_derotation.io import read_movie, sidecar_path
from napari_derotation.io.outputs import open_writer, output_format
from napari_derotation.io.zarr_store import ZarrSource
from napari_derotation.simulate import simulate_movie

from helpers import written_simulation


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return written_simulation(
        tmp_path_factory.mktemp("zarr"),
        (24, 30),
        11,
        trace="real",
        center_offset=(1.5, -2),
        seed=3,
    )


@pytest.fixture(scope="module")
def local():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def test_writer_round_trips_planes_and_channels_with_ngff_metadata(tmp_path):
    movie = (
        np.random.default_rng(0).integers(0, 4000, (7, 2, 3, 5, 6)).astype(">u2")
    )  # big-endian input
    out = tmp_path / "m.ome.zarr"
    with open_writer(
        out,
        movie.shape,
        movie.dtype,
        axes="TZCYX",
        record={"center_row_col": [2.0, 3.0]},
        frame_rate=20.0,
        chunk_frames=3,
    ) as w:
        w.write(movie[:4])
        w.write(movie[4:])
    attrs = json.loads((out / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == list("tczyx")
    assert [a["type"] for a in ms["axes"]] == [
        "time",
        "channel",
        "space",
        "space",
        "space",
    ]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"][0] == 0.05
    assert attrs["napari_derotation"]["center_row_col"] == [2.0, 3.0]
    arr = zarr.open_array(out / "0", mode="r")
    assert arr.dtype == np.uint16 and arr.chunks == (3, 3, 2, 5, 6)
    src = ZarrSource(out)
    assert src.shape == (7, 2, 3, 5, 6) and src.axes == "TZCYX"
    assert src.metadata["frame_rate"] == pytest.approx(20.0)
    np.testing.assert_array_equal(src.read(2, 6), movie[2:6])
    lazy = src.dask()
    assert type(lazy).__name__ == "Array"
    np.testing.assert_array_equal(np.asarray(lazy), movie)


def test_failed_or_short_write_leaves_nothing(tmp_path):
    movie = np.zeros((6, 4, 5), np.float32)
    with (
        pytest.raises(RuntimeError),
        open_writer(tmp_path / "a.zarr", movie.shape, movie.dtype) as w,
    ):
        w.write(movie[:3])
        raise RuntimeError("boom")
    with (
        pytest.raises(DerotationError, match="wrote 3 of 6"),
        open_writer(tmp_path / "b.zarr", movie.shape, movie.dtype) as w,
    ):
        w.write(movie[:3])
    assert os.listdir(tmp_path) == []


def test_existing_store_refused_unless_overwrite(tmp_path):
    movie = np.ones((2, 3, 4), np.uint8)
    out = tmp_path / "o.zarr"
    with open_writer(out, movie.shape, movie.dtype) as w:
        w.write(movie)
    with pytest.raises(DerotationError, match="refusing to replace"):
        open_writer(out, movie.shape, movie.dtype).__enter__()
    with open_writer(out, movie.shape, movie.dtype, overwrite=True) as w:
        w.write(movie * 7)
    assert read_movie(out).max() == 7
    assert sorted(os.listdir(tmp_path)) == ["o.zarr"]


@pytest.mark.parametrize("name", ["o.h5", "o.zarrx", "o", ".zarr"])
def test_unknown_suffix_names_the_known_ones(name):
    with pytest.raises(DerotationError, match=r"\.tif, .*\.zarr.*\.nwb"):
        output_format(name)


def test_zarr_without_axes_is_refused(tmp_path):
    zarr.create_array(
        tmp_path / "bare.zarr", shape=(3, 4, 5), dtype="u2", zarr_format=2
    )
    with pytest.raises(DerotationError, match="NGFF"):
        ZarrSource(tmp_path / "bare.zarr")
    g = zarr.open_group(tmp_path / "odd.zarr", mode="w", zarr_format=2)
    g.create_array("0", shape=(3, 4, 5), dtype="u2")
    g.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": "q"}, {"name": "y"}, {"name": "x"}],
            "datasets": [{"path": "0"}],
        }
    ]
    with pytest.raises(DerotationError, match="drawn from t, c, z, y, x"):
        ZarrSource(tmp_path / "odd.zarr")


def test_file_to_zarr_equals_in_memory_and_zarr_derotates_again(sim, tmp_path):
    out = tmp_path / "d.zarr"
    rec = derotate_file(sim.path, sim.angles_per_line, out, sim.center, chunk_frames=4)
    np.testing.assert_array_equal(read_movie(out), sim.expected)
    assert ZarrSource(out).record["input"]["sha256"] == rec["input"]["sha256"]
    assert not sidecar_path(tmp_path / "d.tif").exists()  # record inside
    again = tmp_path / "again.ome.zarr"
    derotate_file(out, np.zeros_like(sim.angles_per_line), again, sim.center)
    np.testing.assert_array_equal(read_movie(again), sim.expected)
    assert len(ZarrSource(again).record["input"]["sha256"]) == 64


def test_cli_writes_zarr_reads_it_back_and_refuses_it_twice(sim, tmp_path, capsys):
    out = tmp_path / "o.zarr"
    argv = [
        "derotate",
        str(sim.path),
        "--angles",
        str(sim.angles_file),
        "--center",
        *map(str, sim.center),
        "-o",
        str(out),
        "--quiet",
        "--frame-rate",
        "30",
    ]
    assert main(argv) == 0
    np.testing.assert_array_equal(read_movie(out), sim.expected)
    assert ZarrSource(out).metadata["frame_rate"] == pytest.approx(30)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert main([*argv, "--overwrite"]) == 0


def test_find_center_reads_a_raw_zarr_like_its_tiff(tmp_path, capsys):
    s = simulate_movie((32, 32), 12, trace="sine", center_offset=(1, -1), seed=2)
    tif, raw = tmp_path / "raw.tif", tmp_path / "raw.zarr"
    tifffile.imwrite(tif, s.movie)
    np.save(tmp_path / "a.npy", s.angles_per_line)
    with open_writer(raw, s.movie.shape, s.movie.dtype) as w:
        w.write(s.movie)
    found = []
    for movie in (tif, raw):
        assert (
            main(
                [
                    "find-center",
                    str(movie),
                    "--angles",
                    str(tmp_path / "a.npy"),
                    "--calls",
                    "6",
                    "--json",
                    "--quiet",
                ]
            )
            == 0
        )
        found.append(json.loads(capsys.readouterr().out))
    tif_found, zarr_found = (
        {
            k: v
            for k, v in f.items()
            if k not in ("seconds", "elapsed", "movie", "input")
        }
        for f in found
    )
    assert tif_found == zarr_found and len(tif_found) > 1


def test_cluster_workers_write_the_store(local, sim, tmp_path):
    out = tmp_path / "c.zarr"
    seen = []
    rec = derotate_file_distributed(
        sim.path,
        sim.angles_per_line,
        out,
        sim.center,
        client=local,
        chunk_frames=3,
        progress=lambda d, t: seen.append(d),
        frame_rate=12.0,
    )
    np.testing.assert_array_equal(read_movie(out), sim.expected)
    assert ZarrSource(out).metadata["frame_rate"] == pytest.approx(12.0)
    assert rec["chunk_frames"] == 3 and seen[-1] == 11
    assert seen == sorted(seen)
    assert zarr.open_array(out / "0", mode="r").chunks[0] == 3
    # both workers wrote chunks; nothing but counts came back
    logs = local.run(
        lambda dask_worker: sum(
            1 for t in dask_worker.state.log if "derotate_chunk_to_zarr" in str(t)
        )
    )
    assert len(logs) == 2 and all(v > 0 for v in logs.values())
    assert sorted(os.listdir(tmp_path)) == ["c.zarr"]


def test_cluster_zarr_cancel_and_existing_leave_nothing_new(local, sim, tmp_path):
    with pytest.raises(Cancelled):
        derotate_file_distributed(
            sim.path,
            sim.angles_per_line,
            tmp_path / "x.zarr",
            sim.center,
            client=local,
            chunk_frames=2,
            progress=lambda d, t: d < 4,
        )
    assert os.listdir(tmp_path) == []
    (tmp_path / "y.zarr").mkdir()
    with pytest.raises(DerotationError, match="existing file"):
        derotate_file_distributed(
            sim.path, sim.angles_per_line, tmp_path / "y.zarr", sim.center, client=local
        )
    assert os.listdir(tmp_path / "y.zarr") == []


def test_napari_reader_opens_a_store_lazily(sim, tmp_path):
    from napari_derotation._napari import _meta
    from napari_derotation._napari._reader import napari_get_reader

    out = tmp_path / "r.zarr"
    derotate_file(sim.path, sim.angles_per_line, out, sim.center)
    reader = napari_get_reader(str(out))
    assert reader is not None
    [(data, kwargs, kind)] = reader(str(out))
    assert kind == "image" and type(data).__name__ == "Array"  # dask
    assert data.shape == sim.expected.shape
    np.testing.assert_array_equal(np.asarray(data[3]), sim.expected[3])
    meta = _meta.get(kwargs["metadata"])
    assert meta["derotated"] and meta["center"] == list(sim.center)


def test_pipeline_writes_zarr_or_nwb_by_config(tmp_path):
    from test_run import CENTER, SIZE, make_dataset

    from napari_derotation.pipeline import Dataset, run_dataset
    from napari_derotation.simulate.recorder import simulate_recording

    rec = simulate_recording(
        speeds=(200,), directions=(1,), rows=SIZE, frame_rate=25, seed=1
    )
    make_dataset(tmp_path / "d", rec)
    cfg = Dataset.from_folder(tmp_path / "d").config.replace(center=CENTER)
    tif = run_dataset(Dataset(cfg), tmp_path / "tif")
    expected = tifffile.imread(tif["pipeline"]["outputs"]["movie"])
    zrec = run_dataset(Dataset(cfg.replace(output_format="zarr")), tmp_path / "zarr")
    store = tmp_path / "zarr" / "derotated.zarr"
    assert zrec["pipeline"]["outputs"]["movie"] == str(store)
    np.testing.assert_array_equal(read_movie(store), expected)
    assert (tmp_path / "zarr" / "derotated.derotation.json").is_file()
    with pytest.raises(DerotationError, match="existing file"):
        run_dataset(Dataset(cfg.replace(output_format="zarr")), tmp_path / "zarr")
    with pytest.raises(DerotationError, match="paths_write.output_format"):
        cfg.replace(output_format="h5")
    import pynwb
    from test_nwb import META

    (tmp_path / "meta.yaml").write_text(json.dumps(META))
    run_dataset(
        Dataset(
            cfg.replace(
                output_format="nwb",
                frame_rate=25.0,
                nwb_metadata=tmp_path / "meta.yaml",
            )
        ),
        tmp_path / "nwb",
    )
    with pynwb.NWBHDF5IO(str(tmp_path / "nwb" / "derotated.nwb"), "r") as io:
        data = io.read().processing["ophys"]["TwoPhotonSeriesDerotated"].data
        np.testing.assert_array_equal(np.swapaxes(data[:], 1, 2), expected)
