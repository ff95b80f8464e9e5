"""The local weight-file policy: explicit path, else environment variable, else torch hub's cache."""
import argparse
from pathlib import Path

import pytest
import torch

from foundation.errors import GanasError, WeightsFileError, WeightsNotFoundError
from foundation.weights import WeightsSpec, find_weights, hub_checkpoint_dir, read_weights

NAME = "net-1234.pth"
SPEC = WeightsSpec("TestNet", (NAME,), env_var="GANAS_TEST_WEIGHTS")


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
    assert find_weights(SPEC) == hub
    env_file = _put(clean_env / "env" / NAME)
    monkeypatch.setenv("GANAS_TEST_WEIGHTS", str(env_file))
    assert find_weights(SPEC) == env_file
    explicit = _put(clean_env / "mine.pth")
    assert find_weights(SPEC, explicit) == explicit
    # a folder holding the file works for both
    assert find_weights(SPEC, clean_env / "env") == env_file
    monkeypatch.setenv("GANAS_TEST_WEIGHTS", str(clean_env / "env"))
    assert find_weights(SPEC) == env_file


def test_alternative_file_names_in_order_of_preference(clean_env):
    spec = WeightsSpec("TestNet", ("preferred.pth", NAME))
    second = _put(hub_checkpoint_dir() / NAME)
    assert find_weights(spec) == second
    first = _put(hub_checkpoint_dir() / "preferred.pth")
    assert find_weights(spec) == first
    assert find_weights(spec, hub_checkpoint_dir()) == first  # in an explicit folder too


def test_a_wrong_explicit_path_or_variable_does_not_fall_back(clean_env, monkeypatch):
    _put(hub_checkpoint_dir() / NAME)
    with pytest.raises(WeightsNotFoundError, match=r"typo\.pth \(given explicitly\)"):
        find_weights(SPEC, clean_env / "typo.pth")
    monkeypatch.setenv("GANAS_TEST_WEIGHTS", str(clean_env / "nowhere.pth"))
    with pytest.raises(WeightsNotFoundError, match=r"nowhere\.pth \(from \$GANAS_TEST_WEIGHTS\)"):
        find_weights(SPEC)


def test_missing_file_error_names_file_places_and_remedies(clean_env):
    spec = WeightsSpec("TestNet", (NAME,), env_var="GANAS_TEST_WEIGHTS", flag="--testnet-weights",
                       published_at=("https://example.org/net-1234.pth",), hint="Use --no-testnet to avoid it.")
    with pytest.raises(WeightsNotFoundError) as err:
        find_weights(spec)
    message = str(err.value)
    assert isinstance(err.value, GanasError) and err.value.exit_code == 2
    assert f"TestNet weights file {NAME} not found" in message
    assert f"{hub_checkpoint_dir() / NAME} (torch hub cache" in message  # searched
    assert f"copy it to {hub_checkpoint_dir() / NAME}" in message  # and where to put it
    assert "set $GANAS_TEST_WEIGHTS to its path" in message and "pass --testnet-weights PATH" in message
    assert "ganas downloads nothing" in message and "https://example.org/net-1234.pth" in message
    assert message.endswith("Use --no-testnet to avoid it.")


def test_without_a_flag_or_variable_the_message_says_pass_the_path(clean_env):
    with pytest.raises(WeightsNotFoundError) as err:
        find_weights(WeightsSpec("Bare", (NAME,)))
    assert "pass its path explicitly" in str(err.value) and "$" not in str(err.value).split("searched")[0]


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
