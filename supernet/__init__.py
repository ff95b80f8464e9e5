"""Generators, elastic supernets, search spaces and subnet extraction. Knows nothing of Ray, SQL or MLflow."""
from .checkpoint import load_generator, load_reference_generator, save_generator
from .errors import (ArchitectureError, CheckpointError, ConfigError, GanasError, InputSizeError,
                     SearchSpaceError)
from .extract import extract_subnet
from .generators import ChannelGenerator, MobileResnetGenerator, ResnetGenerator, UnetGenerator
from .registry import create_generator, get_architecture, list_architectures
from .space import ChannelSearchSpace, format_config, parse_config_numbers
from .spaces import get_space, list_spaces

__all__ = [
    "ArchitectureError", "ChannelGenerator", "ChannelSearchSpace", "CheckpointError", "ConfigError",
    "GanasError", "InputSizeError", "MobileResnetGenerator", "ResnetGenerator", "SearchSpaceError",
    "UnetGenerator", "create_generator", "extract_subnet", "format_config", "get_architecture", "get_space",
    "list_architectures", "list_spaces", "load_generator", "load_reference_generator", "parse_config_numbers",
    "save_generator",
]
