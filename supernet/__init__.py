"""Generators, elastic supernets, search spaces and subnet extraction. Knows nothing of Ray, SQL or MLflow.

The public names are imported lazily, so importing ``supernet.errors`` does not pay for importing torch.
"""
from importlib import import_module
from typing import Any

_EXPORTS = {
    "load_generator": "checkpoint", "load_reference_generator": "checkpoint", "save_generator": "checkpoint",
    "ArchitectureError": "errors", "CheckpointError": "errors", "ConfigError": "errors",
    "InputSizeError": "errors", "InputChannelsError": "errors", "SearchSpaceError": "errors",
    "extract_subnet": "extract",
    "ChannelGenerator": "generators", "MobileResnetGenerator": "generators", "ResnetGenerator": "generators",
    "UnetGenerator": "generators",
    "create_generator": "registry", "get_architecture": "registry", "list_architectures": "registry",
    "ChannelSearchSpace": "space", "format_config": "space", "parse_config_numbers": "space",
    "get_space": "spaces", "list_spaces": "spaces",
    "sort_channels": "sorting",
    "import_generator": "foreign", "read_key_map": "foreign", "write_key_map": "foreign",
    "get_norm": "norms", "list_norms": "norms",
    "load_teacher": "teachers", "list_teacher_kinds": "teachers", "ProgramGenerator": "programs",
    "recalibrate_batchnorm": "calibration",
    "export_generator": "export", "verify_export": "export", "list_formats": "export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'supernet' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
