"""Regression tests of issue 13 (reliability): each one guards a fault a hostile user found.

Each test names the issue item it guards; docs/reliability.md lists them in a table.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from brainrank.core.cache import FeatureCache
from brainrank.core.scores import FeatureRequest, FeatureSet, LayerFeatures

# --- item 4: a corrupt feature-cache entry ------------------------------------------------


def _feature_set(n: int = 5) -> FeatureSet:
    rng = np.random.default_rng(0)
    layers = []
    for index, name in enumerate(("conv1", "fc")):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        layers.append(
            LayerFeatures(
                name=name,
                index=index,
                relative_depth=float(index),
                n_features=8,
                shape=(8,),
                projections={8: x},
                rdm=1 - np.corrcoef(x),
            )
        )
    return FeatureSet(
        model="toy",
        stimulus_ids=tuple(f"s{i}" for i in range(n)),
        layers=layers,
        info={"projection_dims": [8], "rdm": True},
    )


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(np.random.default_rng(1).bytes(300))


def _garbage_npz(path):
    # a valid archive whose arrays do not match meta.json (wrong number of rows)
    np.savez(path, proj_8=np.zeros((2, 8), np.float32), rdm=np.zeros((2, 2)))


def _garbage_meta(path):
    (path.parent / "meta.json").write_text('{"format": 1, "model": ')


@pytest.mark.parametrize(
    "damage", [_truncate, _garbage, _garbage_npz, _garbage_meta], ids=lambda f: f.__name__[1:]
)
def test_a_corrupt_cache_entry_is_moved_aside_and_recomputed(tmp_path, caplog, damage):
    """Was: ``BadZipFile`` from ``FeatureCache.load`` on every later run."""
    cache = FeatureCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    cache.store(key, _feature_set())
    folder = tmp_path / "cache" / "ab" / key
    damage(folder / "layer_0001.npz")
    request = FeatureRequest(frozenset({8}), rdm=True)
    with caplog.at_level(logging.WARNING, logger="brainrank.core.cache"):
        assert not cache.covers(key, request) or cache.load(key) is None
    assert str(folder) in caplog.text and "damaged" in caplog.text
    assert not folder.exists()  # moved aside, so the next store replaces it cleanly
    assert list(folder.parent.glob(f"{key}.corrupt-*"))
    assert cache.load(key) is None and not cache.covers(key, request)
    cache.store(key, _feature_set())
    again = cache.load(key)
    assert again is not None and again.info["cache"] == "hit"
    np.testing.assert_array_equal(again["fc"].projections[8], _feature_set()["fc"].projections[8])


def test_the_runner_recomputes_over_a_truncated_entry(tmp_path, caplog):
    """End to end through ``compute_features``: the damaged entry costs one recomputation."""
    import brainrank
    from brainrank.core.extraction import ExtractionConfig
    from brainrank.core.features import compute_features
    from brainrank.core.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(4)}
    stimuli = StimulusSet("tiny-cache", list(images), images.__getitem__)
    cache = FeatureCache(tmp_path / "cache")
    request = FeatureRequest(frozenset({8}), rdm=True)
    model = brainrank.load_model("cifar/resnet20:random")
    first = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    for file in (tmp_path / "cache").rglob("layer_0000.npz"):
        _truncate(file)
    with caplog.at_level(logging.WARNING, logger="brainrank.core.cache"):
        second = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    assert second.info.get("cache") != "hit" and "damaged" in caplog.text
    np.testing.assert_allclose(second.layers[0].rdm, first.layers[0].rdm)
    third = compute_features(model, stimuli, request, ExtractionConfig(), cache)
    assert third.info["cache"] == "hit"


# --- item 5: no code runs from a weights file ----------------------------------------------


class _WholeModel(torch.nn.Module):
    """A CLIP-like model holding the image tower as ``visual`` (scripted in a test)."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_torchscript_clip_file_is_read_without_running_it(tmp_path, monkeypatch):
    """Was: openclip fell back to ``torch.jit.load``, which runs the archive's code. Now
    only the archive's tensors are read; the weights are the same."""
    import torch

    import brainrank

    tower = brainrank.load_model("openclip/rn50:random").module
    with torch.no_grad():
        for parameter in tower.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    path = tmp_path / "RN50.pt"  # laid out like OpenAI's release: the tower under 'visual'
    torch.jit.script(_WholeModel(tower)).save(str(path))
    calls = []

    def jit_load(*args, **kwargs):  # what the old code did: run the archive
        calls.append(args)
        raise AssertionError("torch.jit.load must never be called on a weights file")

    monkeypatch.setattr(torch.jit, "load", jit_load)
    loaded = brainrank.load_model("openclip/rn50:openai", weights=str(path)).module
    assert not calls
    expected, got = tower.state_dict(), loaded.state_dict()
    assert set(expected) == set(got)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_a_torchscript_archive_with_other_objects_is_refused(tmp_path):
    """An archive whose data.pkl names anything but tensors and modules runs nothing."""
    import pickle
    import zipfile

    from brainrank.plugin import WeightsUnavailableError
    from brainrank.plugins.models.openclip import _read_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil/data.pkl", pickle.dumps(_Payload(marker), protocol=2))
        archive.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("evil/code/__torch__/evil.py", "def forward(self): pass\n")
    with pytest.raises(WeightsUnavailableError, match=r"TorchScript.*state dict") as caught:
        _read_checkpoint("openclip/rn50:openai", path)
    assert str(path) in str(caught.value) and "io.open" in str(caught.value)
    assert not marker.exists()


class _Payload:
    """A pickle that would create ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_object_weights_file_runs_nothing(tmp_path):
    import torch

    from brainrank.plugin import WeightsUnavailableError
    from brainrank.plugins.models.openclip import _read_checkpoint

    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(marker)}, path)
    with pytest.raises(WeightsUnavailableError, match=r"state dict|tensors") as caught:
        _read_checkpoint("openclip/rn50:openai", path)
    assert str(path) in str(caught.value)
    assert not marker.exists()


# --- item 10: one constant region does not fail RSA for the others -------------------------


def _regions_dataset(constant_region: str = "V4"):
    from brainrank.core.dataset import Dataset
    from brainrank.core.responses import make_responses
    from brainrank.core.specs import DatasetMetadata
    from brainrank.core.stimuli import StimulusSet

    rng = np.random.default_rng(0)
    reps, n, per_region = 2, 12, 6
    regions = ["V1", "V4", "IT"]
    signal = rng.standard_normal((n, per_region * len(regions)))
    trials = signal + 0.3 * rng.standard_normal((reps, n, signal.shape[1]))
    column = regions.index(constant_region) * per_region
    trials[:, :, column : column + per_region] = 1.0  # the same value everywhere
    ids = [f"s{i:03d}" for i in range(n)]
    responses = make_responses(
        trials.reshape(reps * n, -1),
        stimulus_id=ids * reps,
        repetition=np.repeat(np.arange(reps), n),
        neuroid_id=[f"n{i}" for i in range(signal.shape[1])],
        subject="subj",
        region=[r for r in regions for _ in range(per_region)],
    )
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    stimuli = StimulusSet("const-test", ids, images.__getitem__)
    dataset = Dataset(
        "test/const", stimuli, DatasetMetadata("none", "synthetic"), responses=responses
    )
    return dataset, signal


def test_a_constant_region_gets_a_nan_row_with_a_reason_and_the_others_are_scored():
    """Was: ``InputError: the brain RDM contains NaN`` for the whole combination."""
    from brainrank.core.rsa import compare, rdm
    from brainrank.plugins.metrics.rsa import RSA

    dataset, signal = _regions_dataset("V4")
    ids = tuple(f"s{i:03d}" for i in range(signal.shape[0]))
    rng = np.random.default_rng(1)
    layer_x = signal[:, :6] + 0.5 * rng.standard_normal((len(ids), 6))
    features = FeatureSet(
        "test/model",
        ids,
        [LayerFeatures("l0", 0, 0.0, 6, (6,), {8: layer_x}, rdm=rdm(layer_x, dtype="float64"))],
    )
    rows = RSA().score(features, dataset)
    layer_rows = {r.region: r for r in rows if r.selection == "layer"}
    assert set(layer_rows) == {"V1", "V4", "IT"}
    bad = layer_rows["V4"]
    assert np.isnan(bad.value) and "constant" in bad.extra["reason"]
    assert "V4" in bad.extra["reason"]
    for region in ("V1", "IT"):
        assert np.isfinite(layer_rows[region].value)
    # the good regions' values are those of an RSA without the constant region
    from brainrank.core.responses import average_repetitions

    averaged = average_repetitions(dataset.responses())
    v1 = np.asarray(averaged.values)[:, :6]
    expected = np.ravel(
        compare(rdm(layer_x, dtype="float64")[None], rdm(v1, dtype="float64")[None])
    )[0]
    np.testing.assert_allclose(layer_rows["V1"].value, expected, rtol=1e-6)


# --- item 12: read commands never create a leaderboard -----------------------------------

READ_COMMANDS = [
    ["leaderboard"],
    ["query"],
    ["show", "some/model"],
    ["failures"],
    ["runs"],
    ["report", "OUT.html"],
    ["serve", "--port", "0"],
    ["metrics", "--stored"],
]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_a_read_command_refuses_a_missing_sqlite_file(tmp_path, command, monkeypatch):
    """Was: an empty leaderboard created at the mistyped path and "(nothing to show)"."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.leaderboard import server

    def no_serving(*args, **kwargs):  # the old code went on to serve the empty leaderboard
        raise RuntimeError("serve opened the leaderboard and would have served it")

    monkeypatch.setattr(server, "make_server", no_serving)

    missing = tmp_path / "typo" / "leaderbaord.db"
    args = [a.replace("OUT.html", str(tmp_path / "r.html")) for a in command]
    result = CliRunner().invoke(main, [*args, "--db", str(missing)])
    assert result.exit_code != 0, result.output
    assert str(missing) in result.output and "does not exist" in result.output
    assert f"brainrank run --db {missing}" in result.output
    assert "nothing to show" not in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_run_still_creates_the_leaderboard(tmp_path):
    from brainrank.leaderboard import open_store

    path = tmp_path / "new" / "lb.db"
    open_store(str(path)).close()  # the default (run, the Python API) creates it
    assert path.is_file()
    open_store(str(path), create=False).close()  # and then read commands open it


# --- item 14: unsupported database URLs ----------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://user@localhost/lb", "oracle://u@h/db"])
def test_an_unsupported_database_url_says_which_are_supported(url):
    """Was: ``mysql://`` answered with "Install the PostgreSQL driver"."""
    from brainrank.core.errors import StoreError
    from brainrank.leaderboard import open_store

    with pytest.raises(StoreError, match="only SQLite and PostgreSQL") as caught:
        open_store(url)
    assert "PostgreSQL driver" not in str(caught.value)


@pytest.mark.parametrize("value", ["two", "", "-3"])
def test_a_corrupt_schema_version_row_is_a_clear_store_error(tmp_path, value):
    """Was: ``ValueError: invalid literal for int()`` as a traceback."""
    import sqlite3

    from brainrank.core.errors import StoreError
    from brainrank.leaderboard import open_store

    path = tmp_path / "lb.db"
    open_store(str(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (value,))
    with pytest.raises(StoreError, match=r"schema_version.*damaged") as caught:
        open_store(str(path), create=False)
    assert str(path) in str(caught.value) and repr(value) in str(caught.value)


# --- item 14: a duplicate identifier fails only where it is used -------------------------

COPYCAT = """
from brainrank import ModelMetadata, ModelSpec, hookimpl

@hookimpl
def brainrank_models():
    return [ModelSpec("baseline/pixels", lambda: None, ModelMetadata(source="x", architecture="x"))]
"""


def test_a_duplicate_identifier_fails_only_where_it_is_used(tmp_path):
    """Was: every lookup of any model raised DuplicateIdentifierError."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.core.errors import DuplicateIdentifierError
    from brainrank.core.registry import Registry

    path = tmp_path / "copycat.py"
    path.write_text(COPYCAT)
    registry = Registry(plugin_files=[path])
    assert registry.select("model", "baseline/gabor") == ["baseline/gabor"]
    assert "baseline/gabor" in registry.identifiers("model")
    with pytest.raises(DuplicateIdentifierError, match=r"'baseline/pixels'.*'baselines'"):
        registry.get("model", "baseline/pixels")
    with pytest.raises(DuplicateIdentifierError, match=str(path)):
        registry.select("model", "baseline/*")  # a pattern that selects it
    assert any("baseline/pixels" in e.error for e in registry.load_errors)

    runner = CliRunner()
    listing = runner.invoke(main, ["models", "baseline/*", "--plugin", str(path)])
    assert listing.exit_code == 0, listing.output
    assert "baseline/gabor" in listing.output
    assert "DUPLICATE" in listing.output and "registered by 2 plugins" in listing.output
    other = runner.invoke(main, ["datasets", "--plugin", str(path)])
    assert other.exit_code == 0, other.output


# --- item 14: NaN activations name the model and the layers -------------------------------


@pytest.mark.parametrize("rdm", [True, False])
def test_nan_activations_name_the_model_and_the_layers(rdm):
    """Was: "patterns contain NaN ..." with no model or layer named."""
    from collections import OrderedDict

    import torch
    from torch import nn

    from brainrank.core.errors import InputError
    from brainrank.core.extraction import ExtractionConfig, extract_features
    from brainrank.core.specs import Model, ModelMetadata
    from brainrank.core.stimuli import StimulusSet

    torch.manual_seed(0)
    module = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(3, 2, 3),
            flat=nn.Flatten(),
            fc=nn.Linear(32, 5),
            out=nn.Linear(5, 3),
        )
    ).eval()
    with torch.no_grad():
        module.fc.weight[1, 0] = float("nan")  # as from a damaged weights file
    model = Model(
        identifier="test/nan-net",
        module=module,
        preprocess=lambda im: torch.from_numpy(np.asarray(im, np.float32)).permute(2, 0, 1),
        preprocess_id="plain",
        metadata=ModelMetadata(source="test", architecture="toy"),
    )
    rng = np.random.default_rng(0)
    images = {f"s{i}": rng.integers(0, 256, (6, 6, 3), dtype=np.uint8) for i in range(6)}
    stimuli = StimulusSet("nan-test", list(images), images.__getitem__)
    with pytest.raises(InputError) as caught:
        extract_features(
            model, stimuli, FeatureRequest(frozenset({4}), rdm=rdm), ExtractionConfig()
        )
    message = str(caught.value)
    assert "'test/nan-net'" in message and "'fc' (1 features)" in message and "'out'" in message
    assert "'conv'" not in message


def test_large_finite_activations_are_not_taken_for_nan():
    """The cheap check (a float32 column sum) overflows on huge finite values; those columns
    are checked element by element, so only real NaN/inf is refused."""
    from brainrank.core.errors import InputError
    from brainrank.core.extraction.capture import _check_finite
    from brainrank.core.extraction.planning import _Slice

    block = np.ones((6, 4), np.float32)  # feature-major, as the pass buffers are
    block[2] = 3e38  # finite, but four of them sum to inf in float32
    _check_finite("m", [_Slice("a", 0, 6)], {"a": block})
    block[4, 1] = np.inf
    with pytest.raises(InputError, match=r"'a' \(1 features\)"):
        _check_finite("m", [_Slice("a", 0, 6)], {"a": block})
