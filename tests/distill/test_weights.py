"""The local weight-file policy: explicit path, else environment variable, else torch hub's cache."""
import argparse
from pathlib import Path

import pytest
import torch

from distill.weights import WeightsFileError, WeightsNotFoundError, find_weights, hub_checkpoint_dir, read_weights
from supernet.errors import GanasError

NAME = "net-1234.pth"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("GANAS_TEST_WEIGHTS", raising=False)
    return tmp_path


def _put(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.ones(2)}, path)
    return path


def test_hub_dir_follows_torch_home_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert hub_checkpoint_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_checkpoint_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_checkpoint_dir() == tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"


def test_order_explicit_then_env_then_hub(clean_env, monkeypatch):
    hub = _put(hub_checkpoint_dir() / NAME)
    assert find_weights(NAME, env_var="GANAS_TEST_WEIGHTS") == hub
    env_file = _put(clean_env / "env" / NAME)
    monkeypatch.setenv("GANAS_TEST_WEIGHTS", str(env_file))
    assert find_weights(NAME, env_var="GANAS_TEST_WEIGHTS") == env_file
    explicit = _put(clean_env / "mine.pth")
    assert find_weights(NAME, explicit, "GANAS_TEST_WEIGHTS") == explicit
    # a folder holding the file works for both
    assert find_weights(NAME, clean_env / "env", "GANAS_TEST_WEIGHTS") == env_file
    monkeypatch.setenv("GANAS_TEST_WEIGHTS", str(clean_env / "env"))
    assert find_weights(NAME, env_var="GANAS_TEST_WEIGHTS") == env_file


def test_a_wrong_explicit_path_does_not_fall_back(clean_env):
    _put(hub_checkpoint_dir() / NAME)
    with pytest.raises(WeightsNotFoundError, match="given explicitly"):
        find_weights(NAME, clean_env / "typo.pth")


def test_missing_file_error_names_file_places_and_remedies(clean_env):
    with pytest.raises(WeightsNotFoundError) as err:
        find_weights(NAME, env_var="GANAS_TEST_WEIGHTS", what="TestNet", hint="Use --no-testnet to avoid it")
    message = str(err.value)
    assert isinstance(err.value, GanasError) and err.value.exit_code == 2
    assert f"TestNet weights file {NAME} not found" in message
    assert str(hub_checkpoint_dir() / NAME) in message  # searched, and where to copy it
    assert "$GANAS_TEST_WEIGHTS" in message
    assert "Nothing is downloaded" in message and message.endswith("Use --no-testnet to avoid it")


def test_read_weights_is_weights_only_and_typed(tmp_path):
    good = _put(tmp_path / "good.pth")
    assert torch.equal(read_weights(good)["w"], torch.ones(2))
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match="corrupt.pth cannot be read"):
        read_weights(corrupt)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"opt": argparse.Namespace(lr=1)}, unsafe)  # arbitrary objects are refused by weights_only
    with pytest.raises(WeightsFileError, match="unsafe.pth"):
        read_weights(unsafe)
