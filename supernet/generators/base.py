"""What every channel-configurable generator shares: its config, its elastic slots, its hyper-parameters."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import nn

from ..errors import ArchitectureError, ConfigError, InputSizeError


class ChannelGenerator(nn.Module, ABC):
    """A generator whose layer widths are set by a channel config.

    A config is one number per *position* in GAN Compression's units: the layer width at
    position ``i`` is ``config[i] * multipliers[i]``. A static generator is built at one
    config (``None`` = every position at ``ngf``); an elastic one (``elastic=True``) is
    built at full width and runs any config up to it via :meth:`set_config`.
    """

    arch: str = ""

    def __init__(self, ngf: int, config: Sequence[int] | None, elastic: bool):
        super().__init__()
        self.ngf = ngf
        self.elastic = elastic
        positions = len(self.multipliers())
        config = tuple(int(c) for c in config) if config is not None else (ngf,) * positions
        if len(config) != positions:
            raise ConfigError(f"{self.arch} takes {positions} channel numbers, got {len(config)}")
        if any(c <= 0 for c in config):
            raise ConfigError(f"channel numbers must be positive, got {config}")
        self.config = config
        self._active: tuple[int, ...] | None = None

    # -- what subclasses define -------------------------------------------------------
    @abstractmethod
    def multipliers(self) -> tuple[int, ...]:
        """Layer width per config unit at each position (GAN Compression's x1, x2, x4, ...)."""

    @abstractmethod
    def hparams(self) -> dict:
        """Keyword arguments that rebuild this generator through the registry (config excluded)."""

    @abstractmethod
    def slot_layers(self) -> list[list[nn.Module]]:
        """For each position, the elastic layers whose output width that position sets."""

    downsample_factor: int = 1

    # -- shared behaviour ---------------------------------------------------------------
    def widths(self, config: Sequence[int] | None = None) -> tuple[int, ...]:
        config = self.config if config is None else config
        return tuple(c * m for c, m in zip(config, self.multipliers()))

    def set_config(self, config: Sequence[int] | None) -> None:
        """Run the following forward passes at ``config`` (``None``: full width)."""
        if not self.elastic:
            raise ArchitectureError(f"this {self.arch} generator is static; build it with elastic=True")
        if config is None:
            self._active = None
            widths = [None] * len(self.multipliers())
        else:
            config = tuple(int(c) for c in config)
            if len(config) != len(self.config):
                raise ConfigError(f"{self.arch} takes {len(self.config)} channel numbers, got {len(config)}")
            too_wide = [i for i, (c, full) in enumerate(zip(config, self.config)) if c > full or c <= 0]
            if too_wide:
                i = too_wide[0]
                raise ConfigError(
                    f"position {i} of config {config} is {config[i]}; this supernet allows 1..{self.config[i]}"
                )
            self._active = config
            widths = self.widths(config)
        for layers, width in zip(self.slot_layers(), widths):
            for layer in layers:
                layer.active_out = width

    @property
    def active_config(self) -> tuple[int, ...]:
        return self._active if self._active is not None else self.config

    def check_input_size(self, height: int, width: int) -> None:
        f = self.downsample_factor
        if height % f or width % f or height <= 0 or width <= 0:
            raise InputSizeError(
                f"input size {height}x{width} is not a multiple of {f}, the downsampling factor of "
                f"{self.arch}; use e.g. {max(f, height // f * f)}x{max(f, width // f * f)}"
            )

    def forward(self, x: torch.Tensor, config: Sequence[int] | None = None) -> torch.Tensor:
        if config is not None:
            self.set_config(config)
        return self.model(x)
