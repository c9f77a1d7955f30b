"""Where dataset files are looked for: data_dir, BRAINRANK_DATA, [dataset_dirs]."""

from __future__ import annotations

import pytest

from brainrank.config import settings
from brainrank.core.errors import InputError
from brainrank.data.files import dataset_root


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
    assert dataset_root("nsd", tmp_path / "cli") == tmp_path / "mirror"
    assert dataset_root("bold5000") == tmp_path / "conf" / "bold5000"
    assert settings().batch_size == 8  # the other keys keep working
    (brainrank_home / "config.toml").write_text("dataset_dirs = 3\n")
    with pytest.raises(InputError, match=r"dataset_dirs .* must be a table"):
        settings()
