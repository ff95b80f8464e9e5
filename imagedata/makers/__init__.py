"""Built-in datasets generated from a seed (no download), registered by name."""
from . import photos, scenes  # noqa: F401  (importing registers the makers)
from .base import MakeOptions, MakeResult, MakerEntry, get_maker, list_makers, make_dataset, register_maker

__all__ = ["MakeOptions", "MakeResult", "MakerEntry", "get_maker", "list_makers", "make_dataset", "register_maker"]
