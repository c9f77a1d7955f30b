"""One settings module: command line > environment > config file > default, for every
setting; reading settings never changes the environment; the git revision is recorded only
for brainrank's own checkout."""

from __future__ import annotations

import os
import subprocess

import pytest

from brainrank.core.errors import InputError
from brainrank.leaderboard.provenance import git_revision
from brainrank.settings import offline, settings, sqlite_url


def write_config(home, text: str) -> None:
    (home / "config.toml").write_text(text)


def test_defaults(brainrank_home, monkeypatch):
    monkeypatch.delenv("BRAINRANK_OFFLINE")
    conf = settings()
    assert conf.data_dir == brainrank_home / "data" and conf.data_dir_from == "default"
    assert conf.db == sqlite_url(brainrank_home / "leaderboard.db")
    assert conf.cache_dir == brainrank_home / "cache"
    assert (conf.memory_budget_gb, conf.batch_size, conf.offline) == (4.0, 32, False)


def test_command_line_beats_environment_beats_config_file(brainrank_home, monkeypatch, tmp_path):
    write_config(brainrank_home, f'data_dir = "{tmp_path / "file"}"\ndb = "sqlite:///file.db"\n'
                 f'cache_dir = "{tmp_path / "file-cache"}"\nmemory_budget_gb = 2\nbatch_size = 8\n')  # fmt: skip
    conf = settings()
    assert (conf.data_dir, conf.data_dir_from) == (tmp_path / "file", "config file")
    assert (conf.db, conf.cache_dir) == ("sqlite:///file.db", tmp_path / "file-cache")
    assert (conf.memory_budget_gb, conf.batch_size) == (2.0, 8)
    monkeypatch.setenv("BRAINRANK_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("BRAINRANK_DB", "sqlite:///env.db")
    monkeypatch.setenv("BRAINRANK_CACHE", str(tmp_path / "env-cache"))
    conf = settings()
    assert (conf.data_dir, conf.data_dir_from) == (tmp_path / "env", "environment")
    assert (conf.db, conf.cache_dir) == ("sqlite:///env.db", tmp_path / "env-cache")
    conf = settings(data_dir=tmp_path / "cli", db="sqlite:///cli.db", memory_budget_gb=1,
                    batch_size=4)  # fmt: skip
    assert (conf.data_dir, conf.data_dir_from) == (tmp_path / "cli", "command line")
    assert (conf.db, conf.memory_budget_gb, conf.batch_size) == ("sqlite:///cli.db", 1.0, 4)


def test_dataset_dirs_apply_only_below_an_explicit_data_folder(
    brainrank_home, monkeypatch, tmp_path
):
    write_config(brainrank_home, f'[dataset_dirs]\nnsd = "{tmp_path / "mirror"}"\n')
    assert settings().dataset_dir("nsd") == tmp_path / "mirror"
    assert settings().dataset_dir("bold5000") == brainrank_home / "data" / "bold5000"
    assert settings(data_dir=tmp_path / "cli").dataset_dir("nsd") == tmp_path / "cli" / "nsd"
    monkeypatch.setenv("BRAINRANK_DATA", str(tmp_path / "env"))
    assert settings().dataset_dir("nsd") == tmp_path / "env" / "nsd"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("memory_budget_gb", "0", "memory budget"),
        ("batch_size", "0", "batch size"),
        ("batch_size", "-3", "batch size"),
        ("offline", '"maybe"', "offline"),
    ],
)
def test_bad_values_are_refused_with_their_name(brainrank_home, key, value, message):
    write_config(brainrank_home, f"{key} = {value}\n")
    with pytest.raises(InputError, match=message):
        settings()


def test_zero_from_the_command_line_is_refused_not_replaced_by_the_default():
    with pytest.raises(InputError, match="memory budget"):
        settings(memory_budget_gb=0)
    with pytest.raises(InputError, match="batch size"):
        settings(batch_size=0)


def test_one_offline_switch(brainrank_home, monkeypatch):
    monkeypatch.setenv("BRAINRANK_OFFLINE", "1")
    assert offline()
    monkeypatch.setenv("BRAINRANK_OFFLINE", "off")
    write_config(brainrank_home, "offline = true\n")
    assert not offline()  # the environment beats the config file
    monkeypatch.delenv("BRAINRANK_OFFLINE")
    assert offline()
    monkeypatch.setenv("BRAINRANK_OFFLINE", "perhaps")
    with pytest.raises(InputError, match="BRAINRANK_OFFLINE"):
        offline()


def test_reading_settings_leaves_the_environment_alone(brainrank_home, monkeypatch, tmp_path):
    write_config(brainrank_home, f'data_dir = "{tmp_path}"\noffline = true\n')
    before = dict(os.environ)
    settings()
    offline()
    assert dict(os.environ) == before


def _git(folder, *args):
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})  # fmt: skip


def test_git_revision_only_for_brainrank_s_own_checkout(tmp_path):
    # a user's project that happens to hold an installed brainrank (a venv inside it)
    project = tmp_path / "project"
    site = project / "venv" / "site-packages"
    site.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "my-analysis"\n')
    _git(project, "init", "-q")
    _git(project, "add", "pyproject.toml")
    _git(project, "commit", "-qm", "x")
    assert git_revision(site) is None
    assert git_revision(project) is None  # a checkout, but not of brainrank
    # brainrank's own checkout
    checkout = tmp_path / "brainrank"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[project]\nname = "brainrank"\n')
    _git(checkout, "init", "-q")
    _git(checkout, "add", "pyproject.toml")
    _git(checkout, "commit", "-qm", "x")
    revision = git_revision(checkout)
    assert revision is not None and len(revision) == 40
    (checkout / "pyproject.toml").write_text('[project]\nname = "brainrank"\n# edited\n')
    assert git_revision(checkout).endswith("+dirty")
