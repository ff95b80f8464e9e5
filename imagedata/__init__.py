"""Datasets and image I/O shared by training (``distill``) and evaluation (``evaluators``).

Folder layouts as ``torch`` Datasets registered by name (aligned pix2pix A|B, unaligned
CycleGAN, labelled image + label map), pix2pix preprocessing with seeded per-item
augmentation, the recorded train1/train2 split, content hashes for dataset identity, and
built-in datasets generated from a seed. Imports nothing from the project but the error base.
"""
from .errors import DatasetError
from .hashing import content_hash, file_digest
from .io import IMAGE_EXTENSIONS, image_to_tensor, read_label_map, read_rgb, tensor_to_image, write_png
from .layouts import (DIRECTIONS, SPLITS, AlignedDataset, FolderDataset, Item, LabelledDataset, LabelSpec,
                      LayoutMatch, UnalignedDataset, colorize, one_hot, read_label_spec)
from .makers import MakeOptions, MakeResult, get_maker, list_makers, make_dataset
from .registry import Detection, create_dataset, detect_layout, get_layout, list_layouts, split_dataset
from .splits import SPLIT_FILE, SplitFiles, SplitRecord, make_split_record, read_split_record
from .transforms import Augmentation, Preprocess, item_random, list_modes

__all__ = [
    "AlignedDataset", "Augmentation", "DIRECTIONS", "DatasetError", "Detection", "FolderDataset", "IMAGE_EXTENSIONS",
    "Item", "LabelSpec", "LabelledDataset", "LayoutMatch", "MakeOptions", "MakeResult", "Preprocess", "SPLITS",
    "SPLIT_FILE", "SplitFiles", "SplitRecord", "UnalignedDataset", "colorize", "content_hash", "create_dataset",
    "detect_layout", "file_digest", "get_layout", "get_maker", "image_to_tensor", "item_random", "list_layouts",
    "list_makers", "list_modes", "make_dataset", "make_split_record", "one_hot", "read_label_map", "read_label_spec",
    "read_rgb", "read_split_record", "split_dataset", "tensor_to_image", "write_png",
]
