"""``napari-derotation batch CONFIG FOLDER...``: the pipeline on many datasets.

Each dataset is one call of :func:`napari_derotation.pipeline.run_dataset`,
so datasets run one after another here, or on a ``dask.distributed`` cluster
with ``--workers N`` (a local cluster) or ``--scheduler ADDRESS``. A failed
dataset does not stop the others; every outcome is listed at the end and the
exit code is 1 if any failed.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

from ..errors import DerotationError
from ..io.atomic import make_folder
from ._common import add_overwrite_argument, add_threads_argument, positive_int
from .run import OVERWRITE_HINT, Reporter, warnings_to

NAME = "batch"
ORDER = 31
HELP = (
    "Run the pipeline on many dataset folders with one config; keeps going "
    "past failures and reports every dataset's outcome at the end."
)


def add_arguments(p):
    add_threads_argument(p)
    p.add_argument("config", type=Path, help="config file (.yml, .yaml, .toml)")
    p.add_argument(
        "folders",
        type=Path,
        nargs="+",
        metavar="FOLDER",
        help="dataset folders (movie TIFF, analog signals, stimulus "
        "table; a config inside a folder overrides CONFIG)",
    )
    p.add_argument(
        "--output-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each dataset to DIR/<folder name> (default: <folder>/derotation)",
    )
    p.add_argument(
        "--plots",
        action=__import__("argparse").BooleanOptionalAction,
        default=None,
        help="write debug PNGs",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        metavar="N",
        help="run datasets in parallel on a local dask cluster of N worker processes",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run datasets on an existing dask.distributed "
        "scheduler (e.g. tcp://host:8786)",
    )
    p.add_argument("--quiet", action="store_true", help="only the summary")
    add_overwrite_argument(p)


def run_one(folder, output, config, plots=None, log=None, overwrite=None) -> dict:
    """One dataset; never raises (except on interrupt): returns its outcome."""
    from ..pipeline import Dataset, run_dataset

    t0 = time.perf_counter()
    outcome = {
        "folder": str(folder),
        "output": str(output),
        "ok": False,
        "error": None,
        "seconds": 0.0,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = Dataset.from_folder(folder, config)
        run_dataset(ds, output, log=log, plots=plots, overwrite=overwrite)
        outcome["ok"] = True
    except Exception as exc:  # report, keep going with the other datasets
        from . import describe_error

        outcome["error"] = (
            describe_error(exc, OVERWRITE_HINT) or f"{type(exc).__name__}: {exc}"
        )
    outcome["seconds"] = round(time.perf_counter() - t0, 2)
    return outcome


def distinct_folders(folders) -> list[Path]:
    """``folders`` with each dataset once: the same folder given twice (by
    another path, a link) would run twice, concurrently with ``--workers``,
    into one output; refused, naming it."""
    seen: dict = {}
    for f in folders:
        key = Path(f).resolve()
        if key in seen:
            same = "" if str(seen[key]) == str(f) else f" (as {seen[key]})"
            raise DerotationError(
                f"dataset {f} is given twice{same}; give each folder once"
            )
        seen[key] = f
    return [Path(f) for f in folders]


def outputs_for(folders, root):
    from ..pipeline import OUTPUT_SUBFOLDER

    if root is None:
        return [Path(f) / OUTPUT_SUBFOLDER for f in folders]
    names = [Path(f).resolve().name for f in folders]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DerotationError(
            f"--output-root needs distinct folder names; repeated: {', '.join(dup)}"
        )
    return [Path(root) / n for n in names]


def run_distributed(
    folders, outputs, config, plots, workers, scheduler, overwrite=None
):
    """Each dataset as one task on a dask.distributed cluster (the same
    client as ``derotate --workers/--scheduler``)."""
    from ..engine.cluster import cluster_client

    with cluster_client(scheduler, workers) as client:
        futures = client.map(
            run_one,
            folders,
            outputs,
            [config] * len(folders),
            [plots] * len(folders),
            [None] * len(folders),
            [overwrite] * len(folders),
            pure=False,
        )
        return client.gather(futures)


def run(args) -> int:
    # here, not at the top: every command's module is imported to build the
    # parser, and the pipeline imports scipy.signal (seconds)
    from ..pipeline.config import load_config

    folders = distinct_folders(args.folders)
    report = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    with warnings_to(report):
        config = load_config(args.config, warn=False)
    for note in config.warnings:
        report(f"warning: {args.config.name}: {note}")
    outputs = outputs_for(folders, args.output_root)
    if args.output_root is not None:
        make_folder(args.output_root)
    overwrite = args.overwrite or None
    if args.workers or args.scheduler:
        report(
            f"{len(folders)} datasets on "
            f"{args.scheduler or f'{args.workers} local workers'}"
        )
        results = run_distributed(
            folders,
            outputs,
            config,
            args.plots,
            args.workers,
            args.scheduler,
            overwrite,
        )
    else:
        results = []
        for i, (folder, out) in enumerate(zip(folders, outputs, strict=True)):
            report(f"== [{i + 1}/{len(folders)}] {folder}")
            rep = Reporter(Path(folder).name, quiet=args.quiet)
            results.append(
                run_one(
                    folder, out, config, args.plots, log=rep.log, overwrite=overwrite
                )
            )
    failed = [r for r in results if not r["ok"]]
    print(
        f"{len(results) - len(failed)} of {len(results)} datasets derotated",
        file=sys.stderr,
    )
    for r in results:
        if r["ok"]:
            print(f"ok      {r['folder']} -> {r['output']} ({r['seconds']} s)")
        else:
            print(f"FAILED  {r['folder']}: {r['error']}")
    return 1 if failed else 0
