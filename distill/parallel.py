"""Data-parallel training with ``torch.distributed``: N processes that each run a recipe's step on 1/N of the
batch end with the weights one process gets on the whole batch.

Every process holds the same models (built from the same seed, or loaded from the same checkpoint) and draws
the same per-step randomness from (seed, step), so every rank trains the *same* sampled subnet. What differs
is the data, and the gradients it gives: before each optimizer's ``step`` its gradients are averaged over the
processes (one flattened all-reduce per optimizer step), which for losses that are batch means is the gradient
of the whole batch. That covers every optimizer a recipe has: generator, discriminator(s), the distillation
mappings and OMGD's online teachers alike. DDP's module wrapper is not used because a GAN step calls several
optimizers and runs the discriminator several times, and a sampled subnet leaves parameters unused; hooking
each optimizer's step does what DDP does, per optimizer.

BatchNorm in training mode normalises with the statistics of the *whole* batch (:func:`global_batch_norm`: the
per-channel sums of every process, all-reduced in float64, with the all-reduce differentiable as SyncBatchNorm
does, which itself needs a GPU), so the PatchGAN discriminators, BatchNorm generators and OMGD's channel
distillation see what one process sees, and their running statistics stay the same on every rank. Instance norm
has no cross-sample statistics. Dropout is the one draw that differs: each rank draws its masks from (seed,
step, rank), so a run with dropout matches one process in distribution, not bit for bit.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .loop import Recipe


def _members(holder: object, depth: int, seen: set[int]) -> Iterator[object]:
    """Modules and optimizers a recipe holds: as attributes, in dicts, or in plain objects it keeps (OMGD's
    student with its optimizer, a CycleGAN teacher pair), each once."""
    for value in vars(holder).values():
        for item in (value.values() if isinstance(value, dict) else (value,)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, (torch.nn.Module, torch.optim.Optimizer)):
                yield item
            elif depth > 0 and hasattr(item, "__dict__") and not isinstance(item, (type, torch.Tensor)):
                yield from _members(item, depth - 1, seen)


def recipe_modules(recipe: Recipe) -> list[torch.nn.Module]:
    return [m for m in _members(recipe, 2, set()) if isinstance(m, torch.nn.Module)]


def recipe_optimizers(recipe: Recipe) -> list[torch.optim.Optimizer]:
    return [m for m in _members(recipe, 2, set()) if isinstance(m, torch.optim.Optimizer)]


def data_parallel_refusal(recipe: Recipe) -> str | None:
    """Why ``recipe`` cannot train data-parallel (None: it can): its own reason, or a program teacher (TorchScript,
    torch.export, ONNX), which runs in the process that loaded it and cannot be sent to the workers."""
    if recipe.data_parallel_refusal is not None:
        return recipe.data_parallel_refusal
    from supernet.programs.base import ProgramGenerator, _article

    for module in recipe_modules(recipe):
        if isinstance(module, ProgramGenerator):
            return (f"the teacher {module.source} is {_article(module.label)} {module.label}, which "
                    "runs in the process that loaded it and cannot be sent to data-parallel workers: train without "
                    "--workers, or give the teacher's weights (a ganas checkpoint or a state dict)")
    return None


def move_recipe(recipe: Recipe, device: torch.device) -> None:
    """Models to ``device`` (optimizer state follows its parameters when loaded, or is created there)."""
    for module in recipe_modules(recipe):
        module.to(device)


class GradientAverager:
    """Averages gradients and reported losses over the ``world`` processes of the default group.

    ``communication_seconds`` adds up the time spent in the gradient and loss all-reduces (the per-step overhead
    the benchmark reports).
    """

    def __init__(self, recipe: Recipe, world: int):
        self.world = world
        self.communication_seconds = 0.0
        self._handles = [opt.register_step_pre_hook(self._before_step) for opt in recipe_optimizers(recipe)]

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _before_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        # grads that are None stay None (Adam skips them); they are None on every rank alike, since every
        # rank runs the same subnet
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        self._average(grads)

    def _average(self, tensors: list[torch.Tensor]) -> None:
        if not tensors or self.world == 1:
            return
        started = time.perf_counter()
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()
        self.communication_seconds += time.perf_counter() - started

    def after_step(self, losses: dict[str, float], stop: bool = False) -> tuple[dict[str, float], bool]:
        """The losses averaged over the ranks, and whether any rank stops."""
        names = sorted(losses)
        device = self._device()
        values = torch.tensor([float(losses[n]) for n in names] + [float(stop)], dtype=torch.float64, device=device)
        if self.world > 1:
            started = time.perf_counter()
            dist.all_reduce(values)
            self.communication_seconds += time.perf_counter() - started
        values = values.cpu()
        averaged = {n: float(values[i]) / self.world for i, n in enumerate(names)}
        return averaged, bool(values[-1] > 0)

    def _device(self) -> torch.device:
        backend = dist.get_backend() if dist.is_initialized() else "gloo"
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


@contextmanager
def global_batch_norm(world: int) -> Iterator[None]:
    """While entered, every BatchNorm in training mode (``F.batch_norm``, which ``nn.BatchNorm2d`` and the elastic
    norms call) normalises with the statistics of the whole batch over the ``world`` processes."""
    if world == 1:
        yield
        return
    original = F.batch_norm

    def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                   eps=1e-5):
        if not training:
            return original(input, running_mean, running_var, weight, bias, training, momentum, eps)
        return _whole_batch_norm(input, running_mean, running_var, weight, bias, momentum, eps, world)

    F.batch_norm = batch_norm
    try:
        yield
    finally:
        F.batch_norm = original


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces the gradient: every process's loss depends on every process's
    batch through the shared statistics, so each input's gradient sums what all processes send back."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def _whole_batch_norm(x, running_mean, running_var, weight, bias, momentum, eps, world):
    dims = [0, *range(2, x.dim())]
    wide = x.double()
    sums = _SumOverProcesses.apply(torch.cat([wide.sum(dims), (wide * wide).sum(dims)]))
    count = x.numel() // x.shape[1] * world
    mean, square = sums.chunk(2)
    mean, var = mean / count, square / count - (mean / count) ** 2
    if running_mean is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
            running_var.mul_(1 - momentum).add_((var * count / max(count - 1, 1)).to(running_var.dtype),
                                                alpha=momentum)
    shape = [1, -1] + [1] * (x.dim() - 2)
    y = (x - mean.to(x.dtype).view(shape)) * torch.rsqrt(var.to(x.dtype).view(shape) + eps)
    if weight is not None:
        y = y * weight.view(shape)
    if bias is not None:
        y = y + bias.view(shape)
    return y
