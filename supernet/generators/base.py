"""The generator contract: what a channel-configurable family implements, and what it gets for free.

A family (ResNet, U-Net, and next SPADE) subclasses :class:`ChannelGenerator` and implements
every member marked abstract below; a class that misses one cannot be instantiated (``TypeError``
from :mod:`abc`), and a class without an ``arch`` name is refused at construction. Generic code
(distillation, subnet extraction, evaluation, MACs counting) uses only these members; what is
specific to a family's internals is a plug-in registered under its ``arch`` (the closed-form MACs
formula in :mod:`evaluators.closed_form`, the channel groups in :mod:`supernet.sorting`).

**The config rule.** A supernet's active config is set only inside ``with g.configured(config):``
(or for one call, ``g(x, config=config)``, which is the same thing); leaving the block restores
the config that was active before, so blocks nest. Outside every block a supernet runs at full
width. There is no setter that outlives a block, so a forward pass cannot run at a config left
over from another caller. Blocks change the supernet's layers: one supernet object serves one
thread at a time, and a ``copy.deepcopy`` taken inside a block keeps that block's config.
"""
from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from typing import ClassVar, Iterator, Sequence

import torch
from torch import nn

from ..errors import ArchitectureError, ConfigError, InputChannelsError, InputSizeError


class ChannelGenerator(nn.Module, ABC):
    """A generator whose layer widths are set by a channel config.

    A config is one number per *position* in GAN Compression's units: the layer width at
    position ``i`` is ``config[i] * multipliers()[i]``. A static generator is built at one
    config (``None`` = every position at ``ngf``); an elastic one (``elastic=True``) is built at
    full width and runs any config up to it inside :meth:`configured`.

    A subclass stores its hyper-parameters on ``self`` *before* calling
    ``super().__init__(ngf, config, elastic)``: construction checks the config against
    :meth:`multipliers` and then builds the module tree with :meth:`build_model`.
    """

    # -- what a family declares ------------------------------------------------------------
    arch: ClassVar[str] = ""
    """The family's registry name (``resnet``, ``unet``, ...): extraction rebuilds a subnet with
    ``create_generator(arch, **hparams())`` and closed-form counts are keyed by it."""

    distill_concat_halves: ClassVar[bool] = False
    """Whether the features named by :meth:`distill_layer_names` are ``cat([a, b])`` of two equal
    halves (U-Net skip outputs), so a narrower subnet keeps the first channels of each half."""

    takes_label_maps: ClassVar[bool] = False
    """Whether the input is a one-hot label map (``input_nc`` = labels, + dontcare, + instance edges: SPADE)
    rather than an image."""

    model: nn.Module
    """The module tree :meth:`build_model` returned; :meth:`forward` runs it. Its name is the
    ``model.`` prefix of every state-dict key, as in pytorch-CycleGAN-and-pix2pix (SPADE leaves the
    prefix out of its state dicts, as NVlabs/SPADE has none)."""

    @property
    @abstractmethod
    def downsample_factor(self) -> int:
        """Input height and width must be multiples of this (4 for the ResNet, 2**num_downs for a U-Net)."""

    @abstractmethod
    def multipliers(self) -> tuple[int, ...]:
        """The config layout: one entry per position (so its length is the config length), the
        layer width per config unit there (GAN Compression's x1, x2, x4, ...)."""

    @abstractmethod
    def hparams(self) -> dict:
        """Keyword arguments that rebuild this generator through the registry (config and elastic excluded)."""

    @abstractmethod
    def build_model(self, widths: tuple[int, ...]) -> nn.Module:
        """The module tree at layer ``widths`` (:meth:`widths` of the built config), elastic layers
        when ``self.elastic``. Called once, by :meth:`__init__`, after the hyper-parameters are set."""

    @abstractmethod
    def slot_layers(self) -> list[list[nn.Module]]:
        """For each position, the elastic layers whose output width that position sets."""

    @abstractmethod
    def distill_layer_names(self) -> list[str]:
        """Module names (``named_modules``) whose outputs are distilled, in the same order for a
        teacher and a student of the family; see :attr:`distill_concat_halves`."""

    # -- shared behaviour ---------------------------------------------------------------------
    def __init__(self, ngf: int, config: Sequence[int] | None, elastic: bool):
        super().__init__()
        if not isinstance(self.arch, str) or not self.arch:
            raise ArchitectureError(f"{type(self).__name__} declares no arch name; set the class attribute "
                                    "arch to the name it is registered under")
        self.ngf = ngf
        self.elastic = elastic
        positions = self.num_positions
        config = tuple(int(c) for c in config) if config is not None else (ngf,) * positions
        if len(config) != positions:
            raise ConfigError(f"{self.arch} takes {positions} channel numbers, got {len(config)}")
        if any(c <= 0 for c in config):
            raise ConfigError(f"channel numbers must be positive, got {config}")
        self.config = config
        self._active: tuple[int, ...] | None = None
        self.model = self.build_model(self.widths())

    @property
    def num_positions(self) -> int:
        """The config length."""
        return len(self.multipliers())

    def widths(self, config: Sequence[int] | None = None) -> tuple[int, ...]:
        config = self.config if config is None else config
        return tuple(c * m for c, m in zip(config, self.multipliers()))

    def validate_config(self, config: Sequence[int]) -> tuple[int, ...]:
        """``config`` as a tuple, checked against this supernet's widths (:class:`ConfigError` if it does not fit)."""
        if not self.elastic:
            raise ArchitectureError(f"this {self.arch} generator is static; build it with elastic=True")
        config = tuple(int(c) for c in config)
        if len(config) != len(self.config):
            raise ConfigError(f"{self.arch} takes {len(self.config)} channel numbers, got {len(config)}")
        too_wide = [i for i, (c, full) in enumerate(zip(config, self.config)) if c > full or c <= 0]
        if too_wide:
            i = too_wide[0]
            raise ConfigError(
                f"position {i} of config {config} is {config[i]}; this supernet allows 1..{self.config[i]}"
            )
        return config

    @contextlib.contextmanager
    def configured(self, config: Sequence[int] | None) -> Iterator[tuple[int, ...]]:
        """Run the forward passes inside the ``with`` block at ``config`` (``None``: full width).

        Yields the active config; on exit (also on an exception) the config active before comes
        back, so blocks nest. Only an elastic supernet can be configured.
        """
        if not self.elastic:
            raise ArchitectureError(f"this {self.arch} generator is static; build it with elastic=True")
        active = None if config is None else self.validate_config(config)
        previous = self._active
        self._set_widths(active)
        try:
            yield self.active_config
        finally:
            self._set_widths(previous)

    def _set_widths(self, config: tuple[int, ...] | None) -> None:
        self._active = config
        widths = [None] * self.num_positions if config is None else self.widths(config)
        for layers, width in zip(self.slot_layers(), widths):
            for layer in layers:
                layer.active_out = width

    @property
    def active_config(self) -> tuple[int, ...]:
        """The config a forward pass runs now: the innermost :meth:`configured` block's, else the built one."""
        return self._active if self._active is not None else self.config

    def check_input_size(self, height: int, width: int) -> None:
        f = self.downsample_factor
        if height % f or width % f or height <= 0 or width <= 0:
            raise InputSizeError(
                f"input size {height}x{width} is not a multiple of {f}, the downsampling factor of "
                f"{self.arch}; use e.g. {max(f, height // f * f)}x{max(f, width // f * f)}"
            )

    def check_input_channels(self, channels: int, source: str = "the data") -> None:
        """Refuse inputs of ``channels`` channels (what ``source`` gives) unless this generator takes that many; a
        label-map generator (SPADE) is told apart, since ganas's datasets give images, not one-hot label maps."""
        want = getattr(self, "input_nc", None)
        if want is None or int(channels) == int(want):
            return
        if self.takes_label_maps:
            raise InputChannelsError(
                f"{self.arch} takes a one-hot label map of {want} channels (the labels, + dontcare, + the instance "
                f"edge channel), but {source} gives {channels}-channel images: ganas's datasets feed generators "
                "images, not one-hot label maps, so a label-map generator can be counted (ganas macs), exported "
                "and imported as a teacher, but not trained, searched or evaluated on data yet (docs/teachers.md)")
        raise InputChannelsError(f"{self.arch} takes {want}-channel inputs, but {source} gives {channels}-channel "
                                 "images: use a generator made for this data")

    def forward(self, x: torch.Tensor, config: Sequence[int] | None = None) -> torch.Tensor:
        """``model(x)`` at the active config, or at ``config`` for this call only (see :meth:`configured`)."""
        if config is None:
            return self.model(x)
        with self.configured(config):
            return self.model(x)
