"""A Python API that cannot be misused (issue 24, item 4): the leaderboard is db=, one score
schema for brainrank.score() and leaderboard.scores(), brainrank.features(), an xarray
score, `brainrank export` and `brainrank cache`."""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import brainrank
from brainrank import leaderboard
from brainrank.cli import main
from brainrank.core.errors import InputError, StoreError

TINY = Path(__file__).parent / "fixtures" / "tiny_plugin.py"


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    """A leaderboard with tiny/net on tiny/data (rsa, srp-ridge)."""
    from brainrank.core.registry import get_registry, reset_registry

    folder = tmp_path_factory.mktemp("api")
    db = str(folder / "lb.db")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINRANK_HOME", str(folder / "home"))
        patch.setenv("BRAINRANK_OFFLINE", "1")
        reset_registry()
        get_registry([TINY])
        for metric in ("rsa", "srp-ridge"):
            brainrank.score("tiny/net", "tiny/data", metric, db=db, cache=False)
        reset_registry()
    return db


# --------------------------------------------------------------------------- the keyword db


def test_a_model_name_is_never_taken_for_a_leaderboard(tmp_path, monkeypatch, tiny_db):
    monkeypatch.chdir(tmp_path)
    for call in (lambda: leaderboard.scores("baseline/pixels"),
                 lambda: leaderboard.ranking("simulated"),
                 lambda: leaderboard.per_neuroid("baseline/pixels")):  # fmt: skip
        with pytest.raises(InputError, match=r"is not a leaderboard.*db=") as caught:
            call()
        assert "model='" in str(caught.value) or "model=" in str(caught.value)
    assert not list(tmp_path.rglob("*")), "a file was created"
    # a path where there is no leaderboard is refused, as the command line refuses it
    with pytest.raises(StoreError, match="there is no leaderboard"):
        leaderboard.scores(db=str(tmp_path / "typo.db"))
    assert not (tmp_path / "typo.db").exists()


def test_a_leaderboard_given_first_still_works_with_a_warning(tiny_db):
    expected = leaderboard.scores(db=tiny_db, model="tiny/net", metric="rsa")
    with pytest.warns(DeprecationWarning, match=r"give it as db="):
        legacy = leaderboard.scores(tiny_db, model="tiny/net", metric="rsa")
    pd.testing.assert_frame_equal(legacy, expected)
    with pytest.warns(DeprecationWarning):
        by_position = leaderboard.ranking(tiny_db, "max", n_boot=50)
    keyword = leaderboard.ranking(db=tiny_db, selection="max", n_boot=50)
    pd.testing.assert_frame_equal(by_position, keyword)
    store = leaderboard.open_store(tiny_db, create=False)
    detail = leaderboard.model_detail("tiny/net", db=store)
    with pytest.warns(DeprecationWarning):
        old = leaderboard.model_detail(tiny_db, "tiny/net")
    pd.testing.assert_frame_equal(old["summary"], detail["summary"])
    assert len(detail["layers"]) > 0
    # an open store first is unambiguous: no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert len(leaderboard.scores(store, model="tiny/net")) > 0
        assert leaderboard.model_detail(store, "tiny/net")["metadata"]["identifier"] == "tiny/net"


# --------------------------------------------------------------------------- one schema


def test_score_returns_the_schema_of_scores(tiny_db, tiny_plugin_path):
    brainrank.get_registry([tiny_plugin_path])
    fresh = brainrank.score("tiny/net", "tiny/data", "rsa", cache=False)  # no database
    stored = leaderboard.scores(db=tiny_db, model="tiny/net", metric="rsa")
    assert list(fresh.columns) == list(stored.columns)
    assert {"normalized", "flag", "chance", "config", "best", "family", "trained"} <= set(
        fresh.columns
    )
    key = ["subject", "region", "layer", "selection"]
    a = fresh.sort_values(key).reset_index(drop=True)
    b = stored.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6)
    np.testing.assert_allclose(a["normalized"].astype(float), b["normalized"].astype(float),
                               rtol=1e-6)  # fmt: skip
    assert (a["flag"] == b["flag"]).all()


def test_the_xarray_score_is_brainscores_center_error_raw_ceiling(tiny_db):
    frame = leaderboard.scores(db=tiny_db)
    data = leaderboard.as_xarray(frame)
    assert set(data.data_vars) >= {"center", "error", "raw", "ceiling"}
    assert set(data.dims) == {"model", "dataset", "config", "region"}
    cell = dict(model="tiny/net", dataset="tiny/data", config="srp-ridge", region="a")
    rows = frame[(frame["model"] == "tiny/net") & (frame["config"] == "srp-ridge")
                 & (frame["region"] == "a") & (frame["selection"] == "heldout")]  # fmt: skip
    assert len(rows) == 1  # one subject
    row = rows.iloc[0]
    expected = row["normalized"] if pd.notna(row["normalized"]) else row["score"]
    assert float(data.center.sel(**cell)) == pytest.approx(expected)
    assert float(data.raw.sel(**cell)) == pytest.approx(row["score"])
    assert float(data.ceiling.sel(**cell)) == pytest.approx(row["ceiling"])
    assert str(data.selection.sel(**cell).item()) == "heldout"  # the declared leak-free row
    # several subjects: the error is the standard error over them
    two = frame[(frame["model"] == "tiny/net") & (frame["selection"] == "heldout")].copy()
    second = two.assign(subject="s2", score=two["score"] + 0.1,
                        normalized=two["normalized"] + 0.2)  # fmt: skip
    both = leaderboard.as_xarray(pd.concat([two, second]))
    values = np.array([row["normalized"], row["normalized"] + 0.2])
    assert float(both.center.sel(**cell)) == pytest.approx(values.mean())
    assert float(both.error.sel(**cell)) == pytest.approx(values.std(ddof=1) / np.sqrt(2))
    assert int(both.n_subjects.sel(**cell)) == 2


# --------------------------------------------------------------------------- features


def _net():
    import torch
    from torch import nn

    torch.manual_seed(0)
    module = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 2, 3), relu=nn.ReLU(),
                                       pool=nn.AdaptiveAvgPool2d(2))).eval()  # fmt: skip

    def prep(image):
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255

    meta = brainrank.ModelMetadata(source="t", architecture="net", family="convnet", trained=False)
    return brainrank.Model("t/net", module, prep, "uint8/255", meta)


def test_features_are_the_layers_activations(tmp_path):
    import torch
    from PIL import Image

    model = _net()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    acts = brainrank.features(model, images, layers=["conv", "pool"])
    assert list(acts) == ["conv", "pool"]
    # the oracle: torch itself, on the same inputs
    batch = torch.stack([model.preprocess(i) for i in images])
    with torch.no_grad():
        conv = model.module.conv(batch)
        pool = model.module.pool(torch.relu(conv))
    np.testing.assert_allclose(acts["conv"], conv.reshape(5, -1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(acts["pool"], pool.reshape(5, -1).numpy(), rtol=1e-6)
    shaped = brainrank.features(model, images, layers="po*", flatten=False, batch_size=2)
    assert shaped["pool"].shape == (5, 2, 2, 2)
    assert list(brainrank.features(model, images)) == ["conv", "relu", "pool"]
    assembly = brainrank.features(model, images, layers="conv,pool", output="xarray")
    assert assembly.dims == ("presentation", "neuroid")
    assert assembly.shape == (5, 2 * 6 * 6 + 8)
    assert list(assembly["stimulus_id"].values) == ["0", "1", "2", "3", "4"]
    np.testing.assert_allclose(assembly.sel(neuroid=assembly["layer"] == "pool").values,
                               acts["pool"])  # fmt: skip
    # a folder of images, read in name order
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"im{i}.png")
    from_files = brainrank.features(model, tmp_path, layers=["pool"])
    np.testing.assert_allclose(from_files["pool"], acts["pool"])
    with pytest.raises(InputError, match=r"no layer 'fc'.*conv, relu, pool"):
        brainrank.features(model, images, layers=["fc"])


# --------------------------------------------------------------------------- export


def test_export_scores_and_features(tiny_db, tmp_path, tiny_plugin_path):
    runner = CliRunner()
    out = tmp_path / "scores.csv"
    result = runner.invoke(main, ["export", "scores", str(out), "--db", tiny_db, "--model",
                                  "tiny/net"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    expected = leaderboard.scores(db=tiny_db, model="tiny/net")
    assert len(written) == len(expected) and "normalized" in written and "flag" in written
    np.testing.assert_allclose(written["score"], expected["score"])
    nc = tmp_path / "score.nc"
    result = runner.invoke(main, ["export", "scores", str(nc), "--db", tiny_db])
    assert result.exit_code == 0, result.output
    import xarray as xr

    with xr.open_dataset(nc) as data:
        assert {"center", "error", "raw", "ceiling"} <= set(data.data_vars)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        result = runner.invoke(main, ["export", "scores", str(tmp_path / "s.parquet"), "--db",
                                      tiny_db])  # fmt: skip
        assert result.exit_code == 1 and "pip install pyarrow" in result.output
    else:
        result = runner.invoke(main, ["export", "scores", str(tmp_path / "s.parquet"), "--db",
                                      tiny_db])  # fmt: skip
        assert result.exit_code == 0 and len(pd.read_parquet(tmp_path / "s.parquet")) > 0
    npz = tmp_path / "f.npz"
    result = runner.invoke(main, ["--plugin", str(tiny_plugin_path), "export", "features",
                                  "tiny/net", str(npz), "--dataset", "tiny/data", "--layers",
                                  "conv,fc"])  # fmt: skip
    assert result.exit_code == 0, result.output
    brainrank.get_registry([tiny_plugin_path])
    dataset = brainrank.load_dataset("tiny/data")
    expected = brainrank.features("tiny/net", dataset, layers=["conv", "fc"])
    with np.load(npz) as arrays:
        assert list(arrays["layers"]) == ["conv", "fc"]
        assert list(arrays["stimulus_id"]) == list(dataset.stimuli.stimulus_ids)
        np.testing.assert_allclose(arrays["layer:fc"], expected["fc"])
    h5 = tmp_path / "f.h5"
    result = runner.invoke(main, ["--plugin", str(tiny_plugin_path), "export", "features",
                                  "tiny/net", str(h5), "--dataset", "tiny/data", "--layers",
                                  "fc"])  # fmt: skip
    assert result.exit_code == 0, result.output
    import h5py

    with h5py.File(h5) as handle:
        np.testing.assert_allclose(handle["layers/fc"][()], expected["fc"])
    result = runner.invoke(main, ["export", "features", "tiny/net", str(npz)])
    assert result.exit_code == 1 and "--dataset ID or --images FOLDER" in result.output


# --------------------------------------------------------------------------- the cache


def _entry(cache, key: str, n_layers: int, used: float) -> None:
    from brainrank.core.scores import FeatureSet, LayerFeatures

    layers = [LayerFeatures(f"l{i}", i, 0.0, 10, (10,), {8: np.zeros((4, 8), np.float32)}, None)
              for i in range(n_layers)]  # fmt: skip
    info = {"projection_dims": [8], "rdm": False}
    cache.store(key, FeatureSet(f"m/{key[:4]}", ("a", "b", "c", "d"), layers, key, info))
    folder = cache.root / key[:2] / key
    for path in [folder, *folder.iterdir()]:
        os.utime(path, (used, used))


def test_cache_list_prune_and_clear(brainrank_home):
    from brainrank.core import cache_admin
    from brainrank.core.cache import FeatureCache

    root = brainrank_home / "cache" / "features"
    cache = FeatureCache(root)
    now = time.time()
    old, middle, new = "a" * 64, "b" * 64, "c" * 64
    _entry(cache, old, 3, now - 30 * 86400)
    _entry(cache, middle, 3, now - 2 * 86400)
    _entry(cache, new, 3, now)
    (root / "aa" / f"{old}.corrupt-1-abc").mkdir()  # left by a damaged entry
    found = cache_admin.entries(root)
    assert [e.key for e in found if e.kind == "features"] == [new, middle, old]
    assert [e.kind for e in found].count("leftover") == 1
    result = CliRunner().invoke(main, ["cache", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert {r["model"] for r in listed if r["kind"] == "features"} == {"m/aaaa", "m/bbbb", "m/cccc"}
    one = next(e for e in found if e.key == new).bytes
    # dry run removes nothing; the limit keeps the most recently used
    result = CliRunner().invoke(main, ["cache", "prune", "--max-size", str(one + 10),
                                       "--dry-run"])  # fmt: skip
    assert result.exit_code == 0 and "would remove 3 entries" in result.output
    assert len(cache_admin.entries(root)) == 4
    result = CliRunner().invoke(main, ["cache", "prune", "--max-size", str(one + 10)])
    assert result.exit_code == 0, result.output
    assert [e.key for e in cache_admin.entries(root)] == [new]
    assert cache.load(new) is not None and cache.load(old) is None
    result = CliRunner().invoke(main, ["cache", "prune"])
    assert result.exit_code == 1 and "--max-size" in result.output
    assert cache_admin.parse_size("1.5G") == int(1.5 * 2**30)
    with pytest.raises(InputError, match="not a size"):
        cache_admin.parse_size("lots")
    result = CliRunner().invoke(main, ["cache", "clear", "--yes"])
    assert result.exit_code == 0 and not root.exists()


def test_prune_by_age(tmp_path):
    from brainrank.core import cache_admin
    from brainrank.core.cache import FeatureCache

    cache = FeatureCache(tmp_path)
    now = time.time()
    _entry(cache, "d" * 64, 2, now - 10 * 86400)
    _entry(cache, "e" * 64, 2, now)
    removed, _ = cache_admin.prune(tmp_path, older_than=5 * 86400, now=now)
    assert [e.key for e in removed] == ["d" * 64]
