"""``edgecnn evaluate --engine ray``: the same evaluation on Ray Data, for one machine or many.

The pipeline: the items (image paths, or npz rows) become a Ray Dataset; a stateless ``map``
reads and preprocesses each image (``datasets.item_to_input``, the local engine's code); then
``map_batches`` hands batches to a pool of actors (``ActorPoolStrategy``), each of which loads
the model (and the float source) once and runs ``Evaluator.run_input`` per image; the driver
collects the per-image results and reduces them with the local engine's ``reduce_results``.
Per-image results depend on the image only, so the numbers equal the local engine's exactly.

Files on a cluster: the model, the float source and an ``--arch`` spec file travel through
Ray's object store (each actor writes them to its own temp folder), so only the driver needs
them; image paths are
read where the task runs, so on several machines DATA must be on a shared filesystem (or
use an ``.npz``, whose rows travel with the dataset).

Ray: ``pip install "edgecnn[ray]"``. With ``address`` (or ``RAY_ADDRESS``) it joins that
cluster (``ray start --head`` on one machine, ``ray start --address HEAD:6379`` on the others,
then ``--ray-address HEAD:6379`` or ``auto``); otherwise it starts a local Ray with one CPU per
worker and stops it afterwards. A Ray the caller already started is used and left running.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from typing import Callable, Optional

import numpy as np

from .datasets import item_to_input
from .errors import EdgecnnError, ImageError, InputFileError
from .evaluation import EvalSpec, Evaluator, one_blas_thread

BATCH = 16


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EdgecnnError('--engine ray needs Ray Data: pip install "edgecnn[ray]"') from None
    return ray


class _Read:
    """Ray Data ``map``: one row (index, item) -> its preprocessed input, or its error."""

    def __init__(self, pre, shape):
        self.pre, self.shape = pre, shape

    def __call__(self, row: dict) -> dict:
        item = row["path"] if row["path"] else row["pixels"]
        name = row["path"] or f"item[{row['index']}]"
        try:
            x, error = item_to_input(item, name, self.pre), ""
        except (ImageError, InputFileError) as e:
            x, error = np.zeros(self.shape, np.float32), str(e)
        return {"index": row["index"], "x": x, "error": error}


class _Evaluate:
    """Ray Data actor: loads the models once, then evaluates batches of preprocessed inputs."""

    def __init__(self, spec: EvalSpec, files: list):
        ray = _ray()
        self._tmp = tempfile.TemporaryDirectory(prefix="edgecnn-ray-")
        paths = {}
        for role, name, ref in files:  # refs arrive inside a list, so they are not resolved early
            paths[role] = os.path.join(self._tmp.name, name)
            with open(paths[role], "wb") as f:
                f.write(ray.get(ref))
        self.evaluator = Evaluator(replace(spec, **paths))

    def __call__(self, batch: dict) -> dict:
        n = len(batch["index"])
        top_q = np.full((n, 5), -1, np.int64)
        top_f = np.full((n, 5), -1, np.int64)
        stats = np.zeros((n, len(self.evaluator.matches), 7))
        with one_blas_thread():
            for k in range(n):
                if not batch["error"][k]:
                    top_q[k], top_f[k], stats[k] = self.evaluator.run_input(batch["x"][k])
        return {"index": batch["index"], "error": batch["error"], "int8_top": top_q,
                "float_top": top_f, "stats": stats}


def _quiet(ray) -> None:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # edgecnn prints its own count and ETA
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_ray(spec: EvalSpec, dataset, workers: int, address: Optional[str] = None,
            progress: Optional[Callable[[int], None]] = None) -> list:
    """Per-batch results over the whole dataset (the local engine's format), on Ray Data."""
    ray = _ray()
    started = not ray.is_initialized()
    if started:
        address = address or os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else workers,
                 include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        _quiet(ray)
        # Files the actors need, by EvalSpec field: the model, the float source, and an arch
        # spec file (a name such as "lenet5" is not a file and stays as it is).
        files = {"model_path": spec.model_path, "float_source": spec.float_source}
        if spec.arch and os.path.isfile(spec.arch):
            files["arch"] = spec.arch
        refs = []
        for role, path in files.items():
            if path:
                with open(path, "rb") as f:
                    refs.append((role, f"{role}-{os.path.basename(path)}", ray.put(f.read())))
        pre = spec.preprocess
        shape = (1, pre.height, pre.width, pre.channels)
        rows = [{"index": i, "path": dataset.paths[i] if dataset.paths is not None else "",
                 "pixels": None if dataset.paths is not None else dataset.raw(i)}
                for i in range(len(dataset))]
        ds = ray.data.from_items(rows).map(_Read(pre, shape))
        ds = ds.map_batches(_Evaluate, fn_constructor_args=(spec, refs), batch_size=BATCH,
                            batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=max(1, workers)))
        results = []
        for batch in ds.iter_batches(batch_size=BATCH, batch_format="numpy"):
            ok = np.array([not e for e in batch["error"]], bool)
            results.append({
                "index": [int(i) for i in batch["index"][ok]],
                "int8_top": list(batch["int8_top"][ok]), "float_top": list(batch["float_top"][ok]),
                "stats": list(batch["stats"][ok]),
                "errors": [(int(i), str(e)) for i, e in zip(batch["index"], batch["error"]) if e]})
            if progress is not None:
                progress(len(batch["index"]))
        return results
    finally:
        if started:
            ray.shutdown()
