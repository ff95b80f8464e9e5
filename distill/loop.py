"""The resumable training loop shared by every training recipe.

Every step is a function of (state, step): the batch order, the per-step random draws and
torch's RNG are all derived from (seed, step), and the recipe's state (models, optimizers,
image pools) is checkpointed atomically. So a run killed at any moment and resumed from its
last checkpoint ends with exactly the weights of an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch.utils.data import Dataset, default_collate

from foundation.errors import GanasError
from foundation.files import atomic_path
from foundation.signals import StopRequest

TRAINING_FORMAT = "ganas.training/1"


class TrainingError(GanasError):
    """A training run that cannot start or resume as asked."""


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed from any printable parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class LoopSettings:
    steps: int
    batch_size: int = 1
    seed: int = 0
    checkpoint_every: int = 100

    def __post_init__(self):
        if self.steps <= 0 or self.batch_size <= 0 or self.checkpoint_every <= 0:
            raise TrainingError(f"steps, batch size and checkpoint interval must be positive: {self}")


class BatchOrder:
    """Which dataset items form the batch of each step: a fresh seeded permutation per epoch."""

    def __init__(self, size: int, batch_size: int, seed: int):
        if size == 0:
            raise TrainingError("the training dataset is empty")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self._cache: tuple[int, list[int]] | None = None

    def _permutation(self, epoch: int) -> list[int]:
        if self._cache is None or self._cache[0] != epoch:
            g = torch.Generator().manual_seed(derived_seed(self.seed, "order", epoch))
            self._cache = (epoch, torch.randperm(self.size, generator=g).tolist())
        return self._cache[1]

    def indices(self, step: int) -> list[tuple[int, int]]:
        """(epoch, dataset index) of each item in the batch of ``step``."""
        out = []
        for k in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, position = divmod(k, self.size)
            out.append((epoch, self._permutation(epoch)[position]))
        return out


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world`` data-parallel processes: it takes the rank-th 1/world of every batch."""

    rank: int = 0
    world: int = 1

    def take(self, items: list) -> list:
        if len(items) % self.world:
            raise TrainingError(f"a batch of {len(items)} does not split into {self.world} equal shards")
        size = len(items) // self.world
        return items[self.rank * size:(self.rank + 1) * size]


def load_batch(dataset: Dataset, order: BatchOrder, step: int, shard: Shard = Shard()) -> dict:
    """Collate the items of ``step`` (this shard's part); datasets with ``set_epoch`` draw their augmentation per
    (epoch, index), so an item is the same whichever process loads it."""
    set_epoch: Callable[[int], Any] | None = getattr(dataset, "set_epoch", None)
    items = []
    for epoch, index in shard.take(order.indices(step)):
        if set_epoch is not None:
            set_epoch(epoch)
        items.append(dataset[index])
    return default_collate(items)


class Recipe(ABC):
    """One training method: its models and optimizers, one step, and its resumable state."""

    kind: str = ""

    @abstractmethod
    def train_step(self, step: int, batch: dict, rng: random.Random) -> dict[str, float]:
        """Run one optimisation step and return the named losses to show and log."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Models, optimizers and any other state, as tensors and plain Python values."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        ...

    @abstractmethod
    def describe(self) -> dict:
        """Settings that must not change between a run and its resumption (JSON-serialisable)."""

    # why this recipe cannot train data-parallel (None: it can; see distill.parallel)
    data_parallel_refusal: str | None = None

    def shard_losses(self, world: int) -> None:
        """Before data-parallel training on ``world`` processes: gradients are averaged over the processes,
        which is right for losses that are means over the batch; a recipe with batch-summed terms scales them
        by ``world`` here."""


class TrainingRunner(Protocol):
    """Runs a recipe's steps and checkpoints them: :func:`run_training` in this process, or a data-parallel
    engine (``nas.ray_training``) with the same arguments and result."""

    def __call__(self, recipe: Recipe, dataset: Dataset, settings: LoopSettings, out_dir: str | os.PathLike,
                 resume: bool = False, progress: bool = True, description: str = "training",
                 stop_after: int | None = None) -> dict: ...


def run_identity(recipe: Recipe, settings: LoopSettings) -> dict:
    """What a checkpoint must match to be resumed: the recipe's settings and the loop's (the total batch,
    not how many processes share it), as JSON reads it back."""
    return json.loads(json.dumps({"kind": recipe.kind, "recipe": recipe.describe(), "loop": asdict(settings)}))


def check_same_run(saved: dict, identity: dict, where: str) -> None:
    if saved != identity:
        raise TrainingError(
            f"{where} was written with other settings; resume with the same settings or use another "
            f"folder. Saved: {json.dumps(saved, sort_keys=True)[:400]}"
        )


def training_state(recipe: Recipe, step: int, identity: dict) -> dict:
    """The resumable state after ``step`` steps, as checkpoints hold it."""
    return {"format": TRAINING_FORMAT, "step": step, "identity": json.dumps(identity), "recipe": recipe.state_dict()}


def restore(recipe: Recipe, state: dict, identity: dict, where: str) -> int:
    """Load a checkpoint's state into ``recipe`` after checking it is the same run; returns its step."""
    check_same_run(json.loads(state["identity"]), identity, where)
    recipe.load_state_dict(state["recipe"])
    return int(state["step"])


def step_seed(settings: LoopSettings, step: int, shard: Shard = Shard()) -> None:
    """Torch's RNG for ``step`` (dropout): derived from (seed, step), and the rank beyond the first process."""
    parts = (settings.seed, "torch", step) if shard.rank == 0 else (settings.seed, "torch", step, "rank", shard.rank)
    torch.manual_seed(derived_seed(*parts))


def seeded_step(recipe: Recipe, dataset: Dataset, order: BatchOrder, settings: LoopSettings, step: int,
                shard: Shard = Shard(), device: torch.device | None = None) -> dict[str, float]:
    """One training step whose every random draw comes from (seed, step): the same in every process."""
    step_seed(settings, step, shard)
    rng = random.Random(derived_seed(settings.seed, "recipe", step))
    batch = load_batch(dataset, order, step, shard)
    if device is not None:
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return recipe.train_step(step, batch, rng)


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def run_training(recipe: Recipe, dataset: Dataset, settings: LoopSettings, out_dir: str | os.PathLike,
                 resume: bool = False, progress: bool = True, description: str = "training",
                 stop_after: int | None = None) -> dict:
    """Train ``settings.steps`` steps, checkpointing to ``out_dir/last.pt``; returns the last losses.

    ``stop_after`` ends the run early after that many steps of this call (tests use it to
    simulate a crash at a chosen step); the checkpoint written then is resumable.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "last.pt"
    identity = run_identity(recipe, settings)
    start = 0
    if checkpoint.exists():
        if not resume:
            raise TrainingError(f"{checkpoint} exists; pass --resume to continue it, or choose another output folder")
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        start = restore(recipe, state, identity, str(checkpoint))
    order = BatchOrder(len(dataset), settings.batch_size, settings.seed)
    losses: dict[str, float] = {}

    def save(step: int) -> None:
        _save_atomic(training_state(recipe, step, identity), checkpoint)

    bar = tqdm(total=settings.steps, initial=start, desc=description, disable=not progress, unit="step",
               dynamic_ncols=True)
    step = start
    with StopRequest() as stop, bar:
        while step < settings.steps:
            losses = seeded_step(recipe, dataset, order, settings, step)
            step += 1
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            done_here = stop_after is not None and step - start >= stop_after
            if step % settings.checkpoint_every == 0 or step == settings.steps or done_here or stop.requested:
                save(step)
            if done_here or stop.requested:
                break
    if stop.requested and step < settings.steps:
        print(f"stopped at step {step}/{settings.steps}; continue with --resume", flush=True)
    return {"step": step, "finished": step >= settings.steps, "losses": losses, "checkpoint": str(checkpoint)}
