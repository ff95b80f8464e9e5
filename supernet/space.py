"""Channel search spaces: per-position candidate widths, config strings, sampling.

A search space is data. Config strings use GAN Compression's format: the channel numbers
of the positions joined by ``_`` (``16_16_24_16_32_64_16_24``).
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from .errors import ConfigError, SearchSpaceError

Config = tuple[int, ...]

SAMPLING_RULES = ("uniform", "largest", "smallest", "sandwich")


def parse_config_numbers(text: str) -> Config:
    """Split a config string into integers, without checking it against any space."""
    parts = str(text).strip().split("_")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"config {text!r} is not channel numbers joined by '_' (e.g. 16_16_24_16_32_64_16_24)"
        ) from None
    if any(n <= 0 for n in numbers):
        raise ConfigError(f"config {text!r} has a non-positive channel number")
    return numbers


def format_config(config: Sequence[int]) -> str:
    return "_".join(str(int(c)) for c in config)


@dataclass(frozen=True)
class ChannelSearchSpace:
    """Candidate channel numbers per position, for one family of generators.

    ``hparams`` are the architecture's hyper-parameters the space fixes besides the width, because
    they change its config layout (a U-Net space fixes ``num_downs``, one position per level); a
    supernet for the space is built with :meth:`supernet_hparams`.
    """

    name: str
    family: str  # the generator class's arch: "resnet" (also mobile_resnet) or "unet"
    choices: tuple[tuple[int, ...], ...]
    position_names: tuple[str, ...]
    description: str = ""
    architecture: str = ""  # the architecture a supernet for this space is built with
    hparams: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(tuple(sorted(set(c), reverse=True)) for c in self.choices))
        object.__setattr__(self, "hparams", dict(self.hparams))
        if len(self.choices) != len(self.position_names):
            raise ValueError(f"space {self.name}: {len(self.choices)} choice lists, "
                             f"{len(self.position_names)} position names")

    @property
    def num_positions(self) -> int:
        return len(self.choices)

    @property
    def size(self) -> int:
        return math.prod(len(c) for c in self.choices)

    @property
    def ngf(self) -> int:
        """The supernet width this space needs: the largest choice anywhere."""
        return max(max(c) for c in self.choices)

    def supernet_hparams(self) -> dict[str, Any]:
        """Hyper-parameters of the supernet this space is built for: ``ngf`` (the widest choice) and :attr:`hparams`."""
        return {"ngf": self.ngf, **self.hparams}

    def largest(self) -> Config:
        return tuple(c[0] for c in self.choices)

    def smallest(self) -> Config:
        return tuple(c[-1] for c in self.choices)

    def parse(self, text: str) -> Config:
        """A config string checked against this space; :class:`ConfigError` says what is wrong."""
        config = parse_config_numbers(text)
        self.validate(config, text)
        return config

    def validate(self, config: Sequence[int], text: str | None = None) -> Config:
        shown = text if text is not None else format_config(config)
        if len(config) != self.num_positions:
            raise ConfigError(
                f"config {shown!r} has {len(config)} positions; space {self.name} has {self.num_positions} "
                f"({', '.join(self.position_names)})"
            )
        for i, (c, allowed) in enumerate(zip(config, self.choices)):
            if c not in allowed:
                raise ConfigError(
                    f"config {shown!r}: position {i} ({self.position_names[i]}) is {c}; space {self.name} "
                    f"allows {', '.join(map(str, allowed))}"
                )
        return tuple(int(c) for c in config)

    def contains(self, config: Sequence[int]) -> bool:
        return len(config) == self.num_positions and all(c in a for c, a in zip(config, self.choices))

    def format(self, config: Sequence[int]) -> str:
        return format_config(self.validate(config))

    def sample(self, n: int, rule: str = "uniform", seed: int | None = 0) -> list[Config]:
        """``n`` configs drawn by ``rule`` from one ``random.Random(seed)``; the same seed gives the same list."""
        if rule not in SAMPLING_RULES:
            raise SearchSpaceError(f"unknown sampling rule {rule!r}; choose one of {', '.join(SAMPLING_RULES)}")
        rng = random.Random(seed)
        return [self.draw(rule, i, rng) for i in range(n)]

    def draw(self, rule: str, index: int, rng: random.Random) -> Config:
        """The config at ``index`` (0, 1, 2, ...) of a sequence sampled by ``rule``: one subnet per step of
        supernet training, or one item of :meth:`sample`.

        ``uniform`` picks each position's choice from ``rng``; ``largest`` / ``smallest`` always give that
        config; ``sandwich`` (once-for-all) gives the largest at ``index % 3 == 0``, the smallest at 1, a
        uniform pick at 2. ``rng`` is drawn from only for a uniform pick, so the same (rule, index, rng
        state) always gives the same config.
        """
        if rule not in SAMPLING_RULES:
            raise SearchSpaceError(f"unknown sampling rule {rule!r}; choose one of {', '.join(SAMPLING_RULES)}")
        if rule == "largest" or (rule == "sandwich" and index % 3 == 0):
            return self.largest()
        if rule == "smallest" or (rule == "sandwich" and index % 3 == 1):
            return self.smallest()
        return self.random_config(rng)

    def random_config(self, rng: random.Random) -> Config:
        return tuple(rng.choice(c) for c in self.choices)

    def __iter__(self) -> Iterator[Config]:
        """Every config, largest first (use for small spaces only)."""
        return iter(itertools.product(*self.choices))

    def covering_sample(self, extra: int = 0, seed: int = 0) -> list[Config]:
        """Configs that use every choice at every position at least once, plus ``extra`` random ones."""
        rng = random.Random(seed)
        width = max(len(c) for c in self.choices)
        columns = [list(c) + [rng.choice(c) for _ in range(width - len(c))] for c in self.choices]
        for column in columns:
            rng.shuffle(column)
        configs = [tuple(col[i] for col in columns) for i in range(width)]
        return configs + [self.random_config(rng) for _ in range(extra)]
