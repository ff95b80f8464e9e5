"""The folder layouts, one ``Dataset`` class each."""
from .aligned import AlignedDataset, split_pair
from .base import DIRECTIONS, SPLITS, FolderDataset, Item, LayoutMatch
from .labelled import LabelledDataset, LabelSpec, colorize, default_colors, one_hot, read_label_spec
from .unaligned import UnalignedDataset

__all__ = ["AlignedDataset", "DIRECTIONS", "FolderDataset", "Item", "LabelSpec", "LabelledDataset", "LayoutMatch",
           "SPLITS", "UnalignedDataset", "colorize", "default_colors", "one_hot", "read_label_spec", "split_pair"]
