"""Where dataset files are looked for: --data-dir, BRAINRANK_DATA, [dataset_dirs], data_dir."""

from __future__ import annotations

import pytest

from brainrank.core.errors import InputError
from brainrank.data.files import dataset_root
from brainrank.settings import settings


def test_dataset_folders(brainrank_home, monkeypatch, tmp_path):
    assert dataset_root("nsd") == brainrank_home / "data" / "nsd"
    assert dataset_root("nsd", tmp_path) == tmp_path / "nsd"
    monkeypatch.setenv("BRAINRANK_DATA", str(tmp_path / "env"))
    assert dataset_root("bold5000") == tmp_path / "env" / "bold5000"
    (brainrank_home / "config.toml").write_text(
        f'data_dir = "{tmp_path / "conf"}"\nbatch_size = 8\n[dataset_dirs]\nnsd = "{tmp_path / "mirror"}"\n'
    )
    monkeypatch.delenv("BRAINRANK_DATA")
    assert dataset_root("nsd") == tmp_path / "mirror"  # a lab's mirror, used in place
    # --data-dir on the command line beats the config file's [dataset_dirs]
    assert dataset_root("nsd", tmp_path / "cli") == tmp_path / "cli" / "nsd"
    monkeypatch.setenv("BRAINRANK_DATA", str(tmp_path / "env"))  # and so does the environment
    assert dataset_root("nsd") == tmp_path / "env" / "nsd"
    monkeypatch.delenv("BRAINRANK_DATA")
    assert dataset_root("bold5000") == tmp_path / "conf" / "bold5000"
    assert settings().batch_size == 8  # the other keys keep working
    (brainrank_home / "config.toml").write_text("dataset_dirs = 3\n")
    with pytest.raises(InputError, match=r"dataset_dirs .* must be a table"):
        settings()
