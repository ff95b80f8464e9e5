"""Data-parallel training on Ray Train (``ganas train ... --workers N``): the same recipe and steps as one process.

:class:`RayTrainRunner` is a :class:`~distill.loop.TrainingRunner`: the training jobs hand it the recipe they
built, and it runs the steps on N Ray Train workers (``TorchTrainer``; gloo on CPU, NCCL with ``--device
cuda``), each on its shard of every batch, with gradients averaged as :mod:`distill.parallel` explains. The
total batch is recorded in the run's identity, the number of workers is not: a run resumes on another number
of workers as long as workers x per-worker batch is the same. Checkpoints go through Ray Train to a storage
path (a folder, or any pyarrow filesystem URI that every node reaches); the driver shows one progress bar.
"""
from __future__ import annotations

import json
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from distill.loop import (BatchOrder, LoopSettings, Recipe, Shard, TrainingError, check_same_run, restore,
                          run_identity, seeded_step, training_state)
from foundation.errors import GanasError, describe_error

RUN_NAME = "ganas-training"  # Ray Train's run folder under the storage path
IDENTITY_FILE = "ganas-run.json"  # the run's settings, written before its first step
STATE_FILE = "state.pt"  # in each checkpoint folder: what run_training writes to last.pt
DEFAULT_STORAGE = "ray-checkpoints"  # under --out
DEVICES = {"cpu": "CPU", "cuda": "GPU"}  # --device -> the Ray resource each worker takes besides one CPU
CONNECT_TIMEOUT = 5.0


class ClusterTrainingError(TrainingError):
    """A data-parallel run that cannot start as asked (workers, cluster, storage, resumption)."""


@dataclass(frozen=True)
class ClusterSettings:
    workers: int
    ray_address: str | None = None  # HOST:PORT of a running cluster; None: a private one on this machine
    device: str = "cpu"
    storage: str | None = None  # folder or URI for checkpoints; None: OUT/ray-checkpoints
    threads: int | None = None  # torch threads per worker; None: this machine's cores shared (local cluster)

    def __post_init__(self):
        if self.workers < 1:
            raise ClusterTrainingError(f"--workers {self.workers}: data-parallel training needs at least 1 worker")
        if self.device not in DEVICES:
            raise ClusterTrainingError(f"unknown --device {self.device!r}; choose one of {', '.join(DEVICES)}")
        if self.ray_address is not None:
            _host_port(self.ray_address)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterTrainingError(f"--ray-address {address!r} must be HOST:PORT of a Ray cluster's head "
                                   "(e.g. 10.0.0.5:6379, as `ray start --head` prints)")
    return host, int(port)


class CheckpointStorage:
    """The run's folder under a storage path or URI, read and written through pyarrow as Ray Train does."""

    def __init__(self, location: str):
        import pyarrow.fs

        self.location = location
        try:
            if "://" in location:
                self.fs, root = pyarrow.fs.FileSystem.from_uri(location)
                self.ray_path = location
            else:
                self.fs, root = pyarrow.fs.LocalFileSystem(), str(Path(location).expanduser().resolve())
                self.ray_path = root
        except Exception as exc:
            raise ClusterTrainingError(f"checkpoint storage {location!r} cannot be opened ({describe_error(exc)}): "
                                       "give a folder or a pyarrow filesystem URI (s3://, gs://, hdfs://)") from None
        self.run_dir = f"{root.rstrip('/')}/{RUN_NAME}"

    def _exists(self, name: str) -> bool:
        import pyarrow.fs

        return self.fs.get_file_info(f"{self.run_dir}/{name}").type != pyarrow.fs.FileType.NotFound

    def check_writable(self) -> None:
        probe = f"{self.run_dir}/.ganas-probe"
        try:
            self.fs.create_dir(self.run_dir, recursive=True)
            with self.fs.open_output_stream(probe) as stream:
                stream.write(b"ok")
            self.fs.delete_file(probe)
        except Exception as exc:
            raise ClusterTrainingError(f"checkpoint storage {self.location} is not writable ({describe_error(exc)}): "
                                       "give a writable folder or URI with --checkpoint-storage") from None

    def claim(self, identity: dict, resume: bool) -> None:
        """Start a run here, or check that ``resume`` continues the same one; before any training."""
        if self._exists(IDENTITY_FILE) or self._exists("checkpoint_manager_snapshot.json"):
            if not resume:
                raise ClusterTrainingError(f"{self.run_dir} holds a run; pass --resume to continue it, or choose "
                                           "another --out or --checkpoint-storage")
            if self._exists(IDENTITY_FILE):
                with self.fs.open_input_stream(f"{self.run_dir}/{IDENTITY_FILE}") as stream:
                    saved = json.loads(stream.read())
                check_same_run(saved, identity, self.run_dir)
                return
        with self.fs.open_output_stream(f"{self.run_dir}/{IDENTITY_FILE}") as stream:
            stream.write(json.dumps(identity, sort_keys=True).encode())


@dataclass
class _Job:
    """What every worker receives (through the object store): the recipe as built on the driver, and the data."""

    recipe: Recipe
    dataset: Any
    loop: LoopSettings
    identity: dict
    device: str
    threads: int | None
    stop_after: int | None


class _Channel:
    """A tiny actor between rank 0 and the driver: progress one way, a stop request the other."""

    def __init__(self):
        self.latest: dict | None = None
        self.stop = False

    def report(self, info: dict) -> None:
        self.latest = info

    def progress(self) -> dict | None:
        return self.latest

    def request_stop(self) -> None:
        self.stop = True

    def stopping(self) -> bool:
        return self.stop


class RayTrainRunner:
    """Runs a recipe's steps data-parallel on Ray Train; use as a context manager (Ray is shut down at the end
    when this runner started it). :meth:`prepare` checks the cluster and the storage before anything trains."""

    def __init__(self, settings: ClusterSettings):
        self.settings = settings
        self.started_ray = False
        self._storage: CheckpointStorage | None = None
        self.last_run: dict = {}

    def __enter__(self) -> "RayTrainRunner":
        return self

    def __exit__(self, *exc) -> None:
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False

    # -- checks, before any training ----------------------------------------------------------------
    def prepare(self, out_dir: str | Path) -> CheckpointStorage:
        """Join or start Ray, check it has room for the workers and that the checkpoint storage is writable."""
        if self._storage is None:
            self._connect()
            self._check_capacity()
            storage = CheckpointStorage(self.settings.storage or str(Path(out_dir) / DEFAULT_STORAGE))
            storage.check_writable()
            self._storage = storage
        return self._storage

    def _connect(self) -> None:
        import ray

        from .executors import start_local_ray

        address = self.settings.ray_address
        if address is not None:  # Ray itself retries an unreachable address for a minute
            host, port = _host_port(address)
            try:
                socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
            except OSError as exc:
                raise ClusterTrainingError(f"cannot reach the Ray cluster at {address} ({exc}): start it with "
                                           f"`ray start --head --port {port}` there, or fix --ray-address") from None
        if ray.is_initialized():  # a program (or test) that joined a cluster already
            return
        try:
            if address is not None:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            else:
                from foundation.threads import usable_cores

                start_local_ray(usable_cores())
        except Exception as exc:
            raise ClusterTrainingError(f"cannot start or join Ray ({address or 'local'}): "
                                       f"{describe_error(exc)}") from None
        self.started_ray = True

    def _check_capacity(self) -> None:
        import ray

        where = f"the Ray cluster at {self.settings.ray_address}" if self.settings.ray_address else \
            "this machine (its private Ray cluster)"
        total = ray.cluster_resources()
        needs = {"CPU": self.settings.workers}
        if self.settings.device != "cpu":
            needs[DEVICES[self.settings.device]] = self.settings.workers
        for resource, count in needs.items():
            have = int(total.get(resource, 0))
            if count > have:
                raise ClusterTrainingError(f"--workers {self.settings.workers} needs {count} {resource}s (one per "
                                           f"worker) but {where} has {have}: give --workers {max(have, 1)} or "
                                           "fewer, or a larger cluster with --ray-address")

    # -- the run ---------------------------------------------------------------------------------------
    def __call__(self, recipe: Recipe, dataset, settings: LoopSettings, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, description: str = "training", stop_after: int | None = None) -> dict:
        from distill.parallel import data_parallel_refusal

        workers = self.settings.workers
        refusal = data_parallel_refusal(recipe)
        if refusal is not None:
            raise ClusterTrainingError(refusal)
        if settings.batch_size % workers:
            raise ClusterTrainingError(f"a total batch of {settings.batch_size} does not split over {workers} workers")
        storage = self.prepare(out_dir)
        identity = run_identity(recipe, settings)
        storage.claim(identity, resume)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        result = self._fit(_Job(recipe, dataset, settings, identity, self.settings.device, self._threads(),
                                stop_after), storage, progress, f"{description} x{workers} workers")
        if result.checkpoint is None:
            raise ClusterTrainingError(f"the run in {storage.run_dir} ended without a checkpoint")
        with result.checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
        step = restore(recipe, state, identity, storage.run_dir)
        metrics = dict(result.metrics or {})
        self.last_run = {k: metrics.get(k) for k in ("images_per_second", "communication_share")}
        losses = {k: v for k, v in metrics.items() if k not in ("step", *self.last_run)}
        return {"step": step, "finished": step >= settings.steps, "losses": losses,
                "checkpoint": result.checkpoint.path, **self.last_run}

    def _threads(self) -> int | None:
        from .executors import worker_threads

        return worker_threads(self.settings.threads, self.settings.workers, self.settings.ray_address)

    def _fit(self, job: _Job, storage: CheckpointStorage, progress: bool, description: str):
        import ray
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        from foundation.signals import StopRequest

        channel = ray.remote(num_cpus=0)(_Channel).remote()
        trainer = TorchTrainer(
            _train_worker, train_loop_config={"job": ray.put(job), "channel": channel},
            scaling_config=ScalingConfig(num_workers=self.settings.workers, use_gpu=self.settings.device == "cuda"),
            run_config=RunConfig(name=RUN_NAME, storage_path=storage.ray_path,
                                 checkpoint_config=CheckpointConfig(num_to_keep=2),
                                 failure_config=FailureConfig(max_failures=0)))
        outcome: dict[str, Any] = {}

        def fit() -> None:  # off the main thread, so that the driver keeps the signals and the progress bar
            try:
                outcome["result"] = trainer.fit()
            except BaseException as exc:  # re-raised on the main thread
                outcome["error"] = exc

        thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
        with StopRequest() as stop, _ProgressBar(job.loop.steps, description, progress) as bar:
            thread.start()
            asked = False
            while thread.is_alive():
                thread.join(0.5)
                bar.show(ray.get(channel.progress.remote()))
                if stop.requested and not asked:
                    channel.request_stop.remote()
                    asked = True
            bar.show(ray.get(channel.progress.remote()))
        ray.kill(channel)
        if "error" in outcome:
            raise _failure(outcome["error"]) from None
        if stop.requested:
            print(f"stopped; continue with --resume (checkpoints in {storage.run_dir})", flush=True)
        return outcome["result"]


def _failure(exc: BaseException) -> BaseException:
    """A worker's own GanasError as itself; anything else as one ClusterTrainingError line."""
    for failure in (getattr(exc, "worker_failures", None) or {}).values():
        cause = getattr(failure, "cause", failure)
        if isinstance(cause, GanasError):
            return cause
    if isinstance(exc, (GanasError, KeyboardInterrupt)):
        return exc
    return ClusterTrainingError(f"data-parallel training failed: {describe_error(exc)}; continue with --resume")


class _ProgressBar:
    """One bar on the driver: steps, losses averaged over the workers, images per second."""

    def __init__(self, total: int, description: str, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=description, disable=not enabled, unit="step", dynamic_ncols=True)

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def show(self, info: dict | None) -> None:
        if not info:
            return
        self.bar.n = info["step"]
        shown = {k: f"{v:.3g}" for k, v in info["losses"].items()}
        shown["img/s"] = f"{info['images_per_second']:.3g}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.refresh()


def _train_worker(config: dict) -> None:
    """One Ray Train worker: its shard of every step, gradients averaged, checkpoints reported by rank 0."""
    import ray
    import ray.train
    import ray.train.torch

    from distill.parallel import GradientAverager, global_batch_norm, move_recipe

    job: _Job = ray.get(config["job"])
    channel = config["channel"]
    context = ray.train.get_context()
    shard = Shard(context.get_world_rank(), context.get_world_size())
    if job.threads is not None:
        torch.set_num_threads(job.threads)
    recipe = job.recipe
    device = ray.train.torch.get_device() if job.device == "cuda" else torch.device("cpu")
    move_recipe(recipe, device)  # first: loaded optimizer state follows its parameters' device
    start = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location="cpu", weights_only=True)
        start = restore(recipe, state, job.identity, "the run's last checkpoint")
    recipe.shard_losses(shard.world)
    averager = GradientAverager(recipe, shard.world)
    with global_batch_norm(shard.world):
        _steps(job, recipe, averager, shard, start, device, channel)
    averager.close()


def _steps(job: _Job, recipe: Recipe, averager, shard: Shard, start: int, device: torch.device, channel) -> None:
    import ray

    loop = job.loop
    order = BatchOrder(len(job.dataset), loop.batch_size, loop.seed)
    step, began, polled, stop = start, time.perf_counter(), 0.0, False
    while step < loop.steps:
        losses = seeded_step(recipe, job.dataset, order, loop, step, shard, device)
        if shard.rank == 0 and time.perf_counter() - polled > 1.0:
            stop, polled = ray.get(channel.stopping.remote()), time.perf_counter()
        losses, stop = averager.after_step(losses, stop)
        step += 1
        elapsed = time.perf_counter() - began
        info = {"step": step, "losses": losses, "images_per_second": (step - start) * loop.batch_size / elapsed,
                "communication_share": averager.communication_seconds / elapsed}
        if shard.rank == 0:
            channel.report.remote(info)
        done_here = job.stop_after is not None and step - start >= job.stop_after
        if step % loop.checkpoint_every == 0 or step == loop.steps or done_here or stop:
            _report(recipe, step, job.identity, info, shard)
        if done_here or stop:
            break


def _report(recipe: Recipe, step: int, identity: dict, info: dict, shard: Shard) -> None:
    """A checkpoint through Ray Train (every rank reports; rank 0 brings the state, identical on every rank)."""
    import ray.train

    metrics = {"step": step, **info["losses"], "images_per_second": info["images_per_second"],
               "communication_share": info["communication_share"]}
    name = f"step-{step:08d}"
    if shard.rank != 0:
        ray.train.report(metrics, checkpoint=None, checkpoint_dir_name=name)
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(training_state(recipe, step, identity), Path(folder) / STATE_FILE)
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder), checkpoint_dir_name=name)
