"""Scoring on a device: the torch kernels (run here on the CPU; the same code runs on cuda)
equal the numpy kernels within float32 tolerance, for the ridge, the stacking weights and
every metric that uses them; ``--device`` reaches the kernels through the grid and is
checked before any work, and it changes no hash."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.backend import TorchBackend, get_backend
from brainrank.core.dataset import Dataset
from brainrank.core.errors import InputError
from brainrank.core.extraction import ExtractionConfig
from brainrank.core.features import score_features
from brainrank.core.registry import Registry
from brainrank.core.responses import make_responses
from brainrank.core.ridge import Decomposition, RidgeCV, kernel_backend, ridge_kfold
from brainrank.core.rsa import rdm
from brainrank.core.runsettings import RunSettings, run_settings
from brainrank.core.scores import FeatureSet, LayerFeatures
from brainrank.core.specs import DatasetMetadata
from brainrank.core.stacking import stack_weights
from brainrank.core.stimuli import StimulusSet
from brainrank.grid import MemoryStore, run_grid
from brainrank.grid.context import Context, GridConfig
from brainrank.grid.jobs import Combo, Job, run_job
from brainrank.plugins.metrics import _encoding as enc
from brainrank.plugins.metrics.rsa import RSA
from brainrank.plugins.metrics.srp_ridge import PRESETS, SRPRidge
from brainrank.plugins.metrics.stacking import Stacking
from brainrank.plugins.metrics.versa import VERSA
from brainrank.settings import settings

TORCH_CPU = {"backend": "torch", "device": "cpu"}
K = 48


@pytest.fixture
def torch_calls(monkeypatch):
    """Counts the arrays the torch backend moves to its device: proves the torch path ran."""
    calls = {"n": 0}
    original = TorchBackend.asarray

    def counting(self, x, dtype):
        calls["n"] += 1
        return original(self, x, dtype)

    monkeypatch.setattr(TorchBackend, "asarray", counting)
    return calls


def problem(n=60, k=K, v=30, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, k)) * rng.uniform(0.5, 3, k) + rng.uniform(-2, 2, k)).astype(
        np.float32
    )
    Y = X[:, :6] @ rng.standard_normal((6, v)) / 3 + rng.standard_normal((n, v)) + 5
    return X, Y.astype(np.float32)


# --------------------------------------------------------------------------- kernels


def test_kernel_backend_maps_devices():
    assert kernel_backend("cpu") == ("numpy", None)
    assert kernel_backend(None) == ("numpy", None)
    assert kernel_backend("cpu", "torch") == ("torch", "cpu")
    assert kernel_backend("cuda:1") == ("torch", "cuda:1")
    assert kernel_backend("mps", "numpy") == ("torch", "mps")


@pytest.mark.parametrize("k", [K, 200])  # k < n: thin SVD; k >= n: Gram eigendecomposition
def test_decomposition_on_the_torch_device_equals_numpy(k, torch_calls):
    X, _ = problem(n=80, k=k)
    ref = Decomposition.of(X)
    dev = Decomposition.of(X, backend=get_backend("torch", "cpu"))
    assert torch_calls["n"] > 0 and dev.method == ref.method
    np.testing.assert_allclose(dev.x_mean, ref.x_mean, rtol=1e-12, atol=1e-12)
    r = int((ref.eigenvalues > 1e-8 * ref.eigenvalues.max()).sum())
    order_ref, order_dev = np.argsort(ref.eigenvalues)[-r:], np.argsort(dev.eigenvalues)[-r:]
    np.testing.assert_allclose(dev.eigenvalues[order_dev], ref.eigenvalues[order_ref], rtol=1e-9)
    # the basis up to signs and rotations within eigenspaces: compare the projectors
    Pr, Pd = ref.basis[:, order_ref], dev.basis[:, order_dev]
    np.testing.assert_allclose(Pd @ Pd.T, Pr @ Pr.T, atol=1e-9)


@pytest.mark.parametrize("k", [K, 200])
@pytest.mark.parametrize("alphas", [[1e5], [1.0], [0.1, 1.0, 10.0, 100.0, 1e3]])
def test_ridge_loo_and_predict_torch_equal_numpy(k, alphas, torch_calls):
    X, Y = problem(k=k)
    ref = RidgeCV(alphas).fit(X, Y)
    dev = RidgeCV(alphas, **TORCH_CPU).fit(X, Y)
    assert torch_calls["n"] > 0 and dev.result_.info["backend"] == "torch"
    np.testing.assert_array_equal(dev.alpha_, ref.alpha_)
    # Both backends' products are float32. A LOO prediction divides a residual by 1 - H_ii,
    # so its rounding error grows with the largest leverage at the target's alpha (up to
    # ~6000x here at alpha 0.1 with k > n): the tolerance is float32's epsilon times that
    # amplification (computed here in float64), the prediction scale and a small constant.
    Xc = X.astype(np.float64) - X.mean(axis=0)
    gram = Xc @ Xc.T
    n = X.shape[0]
    amplification = {
        a: float((1 / (1 - np.diag(gram @ np.linalg.inv(gram + a * np.eye(n))) - 1 / n)).max())
        for a in alphas
    }
    scale = np.abs(ref.result_.predictions).max()
    tolerance = (
        8 * np.finfo(np.float32).eps * scale * np.array([amplification[a] for a in ref.alpha_])
    )
    difference = np.abs(dev.result_.predictions - ref.result_.predictions).max(axis=0)
    assert (difference <= np.maximum(tolerance, 1e-6 * scale)).all(), (difference, tolerance)
    np.testing.assert_allclose(dev.result_.scores, ref.result_.scores, atol=1e-5)
    np.testing.assert_allclose(dev.result_.cv_scores, ref.result_.cv_scores, rtol=1e-4)
    new = problem(n=9, k=k, seed=5)[0]
    np.testing.assert_allclose(dev.predict(new), ref.predict(new), rtol=1e-9, atol=1e-9)


def test_nested_kfold_torch_equals_numpy(torch_calls):
    X, Y = problem()
    folds = enc.folds(X.shape[0], 4)
    ref = ridge_kfold(X, Y, folds)
    dev = ridge_kfold(X, Y, folds, **TORCH_CPU)
    assert torch_calls["n"] > 0
    np.testing.assert_array_equal(dev.alphas, ref.alphas)
    np.testing.assert_allclose(dev.scores, ref.scores, atol=1e-6)
    np.testing.assert_allclose(dev.predictions, ref.predictions, rtol=1e-6, atol=1e-6)


def test_stacking_weights_torch_equal_numpy(torch_calls):
    rng = np.random.default_rng(3)
    P = rng.standard_normal((4, 50, 120))
    Y = 0.6 * P[0] + 0.3 * P[2] + rng.standard_normal((50, 120))
    ref = stack_weights(P, Y)
    dev = stack_weights(P, Y, backend=get_backend("torch", "cpu"))
    assert torch_calls["n"] > 0
    np.testing.assert_allclose(dev.weights, ref.weights, atol=1e-8)
    np.testing.assert_allclose(dev.r2, ref.r2, atol=1e-10)
    assert np.allclose(dev.weights.sum(1), 1) and (dev.weights >= 0).all()


# --------------------------------------------------------------------------- metrics


def small_dataset(n=48, v=24, seed=1) -> tuple[Dataset, FeatureSet]:
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    latent = rng.standard_normal((n, 5))
    spaces = {
        "early": latent @ rng.standard_normal((5, 80)) + 2 * rng.standard_normal((n, 80)),
        "mid": latent @ rng.standard_normal((5, 30)) + 0.5 * rng.standard_normal((n, 30)),
        "late": rng.standard_normal((n, 60)),
    }
    signal = latent @ rng.standard_normal((5, v))
    trials = np.stack([signal + rng.standard_normal(signal.shape) for _ in range(2)])
    responses = make_responses(
        trials.reshape(2 * n, v),
        stimulus_id=ids * 2,
        repetition=np.repeat([0, 1], n),
        neuroid_id=[f"n{i}" for i in range(v)],
        subject="subj",
        region=["V1", "V4"] * (v // 2),
    )
    images = {s: np.zeros((4, 4, 3), np.uint8) for s in ids}
    stimuli = StimulusSet("device-test", ids, images.__getitem__)
    dataset = Dataset("test/device", stimuli, DatasetMetadata("none", "synthetic"),
                      responses=responses)  # fmt: skip
    layers = [
        LayerFeatures(name, i, i / 2, x.shape[1], (x.shape[1],),
                      projections={K: x[:, :K].astype(np.float32)}, rdm=rdm(x, dtype="float64"))
        for i, (name, x) in enumerate(spaces.items())
    ]  # fmt: skip
    return dataset, FeatureSet("test/model", tuple(ids), layers)


METRICS = {
    "srp-ridge": lambda: SRPRidge(n_components=K),
    "srp-ridge:nsd": lambda: SRPRidge(**{**PRESETS["srp-ridge:nsd"], "n_components": K}),
    "srp-ridge:mouse": lambda: SRPRidge(**{**PRESETS["srp-ridge:mouse"], "n_components": K}),
    "versa": lambda: VERSA(n_components=K),
    "versa:loo": lambda: VERSA(n_components=K, mode="loo"),
    "versa:generalisation": lambda: VERSA(n_components=K, mode="generalisation"),
    "stacking": lambda: Stacking(n_components=K),
    "rsa": RSA,
}


def rows_by_key(rows):
    return {(r.selection, r.subject, r.region, r.layer): r for r in rows}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_on_the_torch_path_equals_numpy(name, torch_calls):
    dataset, features = small_dataset()
    metric = METRICS[name]()
    hash_before = metric.config_hash
    reference = rows_by_key(score_features(metric, features, dataset))
    assert torch_calls["n"] == 0  # the default run setting: numpy on the CPU
    metric.backend = "torch"  # the torch kernels, as on a GPU, but on the CPU
    on_torch = rows_by_key(score_features(metric, features, dataset))
    assert torch_calls["n"] > 0
    assert metric.config_hash == hash_before  # a run setting, not a parameter
    assert set(on_torch) == set(reference)
    for key, row in reference.items():
        other = on_torch[key]
        assert np.isnan(row.value) == np.isnan(other.value), key
        if not np.isnan(row.value):
            assert abs(row.value - other.value) <= 1e-5, (key, row.value, other.value)
        if row.per_neuroid is not None:
            np.testing.assert_allclose(other.per_neuroid, row.per_neuroid, atol=1e-5)


def test_device_is_not_part_of_the_metric_hash():
    for factory in METRICS.values():
        metric = factory()
        before = metric.config_hash
        metric.device = "cuda:3"
        assert metric.config_hash == before
        assert "device" not in metric.parameters


# --------------------------------------------------------------------------- the grid


def grid_scores(store: MemoryStore) -> dict[tuple, float]:
    out = {}
    for (model, _, metric, _), result in store.results.items():
        for r in result.scores:
            out[(model, metric, r.selection, r.subject, r.region, r.layer)] = r.value
    return out


def test_a_grid_run_on_the_torch_path_equals_the_numpy_path(tiny_plugin_path, monkeypatch,
                                                            torch_calls):  # fmt: skip
    metrics = ["srp-ridge", "srp-ridge:nsd", "versa", "stacking", "rsa"]

    def run(store, params=None):
        summary = run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                           models=["tiny/net"], datasets=["tiny/data"], metrics=metrics,
                           metric_params=params or {}, progress=False, device="cpu")  # fmt: skip
        assert not [f for f in summary.failures if f.stage != "plugin"], summary.failures
        assert summary.n_scored == len(metrics)
        return summary

    reference = MemoryStore()
    first = run(reference)
    assert reference.runs[first.run_id]["config"]["device"] == "cpu"  # provenance
    before = torch_calls["n"]  # the numpy run's (none expected; counted from here)
    monkeypatch.setattr(enc.OnDevice, "backend", "torch")  # versa, stacking, rsa
    torch_store = MemoryStore()
    torch_params = {m: {"backend": "torch"} for m in metrics if m.startswith("srp-ridge")}
    run(torch_store, torch_params)
    assert torch_calls["n"] > before
    expected, got = grid_scores(reference), grid_scores(torch_store)
    assert set(got) == set(expected) and len(got) > 20
    for key, value in expected.items():
        assert np.isnan(value) == np.isnan(got[key]), key
        if not np.isnan(value):
            # a stacking weight is the argmin of a problem with flat directions (nearly
            # collinear layers): the two paths' float64 sums, in other orders, stop the
            # iterations at other points of equal objective (1.7e-5 apart on an AMD EPYC
            # host; the scores, which the weights' flat directions leave unchanged, 1e-5)
            tolerance = 1e-4 if key[2] == "weight" else 1e-5
            assert abs(value - got[key]) <= tolerance, (key, value, got[key])


def test_the_grid_hands_its_run_settings_to_every_metric(tiny_plugin_path, tmp_path):
    """The run's device (one value: the extraction's) and its other settings reach the metric
    as the run settings around its ``score`` call; nothing is set on the metric object.
    Checked with a device name this machine does not need to have: the features come from
    the feature cache, and the spy metric runs no kernel."""
    registry = Registry(plugin_files=[tiny_plugin_path])
    seen = []

    class Spy(RSA):
        identifier = "spy"

        def score(self, features, dataset):
            seen.append((self.device, run_settings()))
            return super().score(features, dataset)

    metric = Spy()
    dataset = registry.get("dataset", "tiny/data").load()
    cache = str(tmp_path / "cache")

    def job(extraction):
        config = GridConfig(store=None, run_id=None, extraction=extraction, cache_root=cache,
                            raise_errors=True)  # fmt: skip
        context = Context(config, registry=registry, store=MemoryStore(),
                          datasets={"tiny/data": dataset},
                          metrics={("spy", metric.config_hash): metric})  # fmt: skip
        combo = Combo("tiny/data", "spy", metric.config_hash, "plan")
        # the spy's RSA has no kernel on "cuda:7" here (an error); the settings were seen
        with contextlib.suppress(Exception):
            run_job(Job("tiny/net", dataset.stimuli.content_hash(), [combo]), config, context)

    job(ExtractionConfig())  # on the CPU: fills the feature cache
    job(ExtractionConfig(device="cuda:7", batch_size=7, memory_budget=2**25))
    assert seen[0] == ("cpu", RunSettings())
    assert seen[1] == ("cuda:7", RunSettings("cuda:7", batch_size=7, memory_budget=2**25))
    assert "_device" not in vars(metric) and metric.device == "cpu"  # nothing set on it
    assert run_settings() == RunSettings()  # and nothing left behind


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "tpu"])
def test_run_grid_refuses_a_bad_device_before_any_work(device, tiny_plugin_path):
    store = MemoryStore()
    with pytest.raises(InputError, match="device"):
        run_grid(registry=Registry(plugin_files=[tiny_plugin_path]), store=store,
                 models=["tiny/net"], datasets=["tiny/data"], metrics=["rsa"],
                 progress=False, device=device)  # fmt: skip
    assert store.runs == {}  # nothing started


# --------------------------------------------------------------------------- settings, CLI


def test_device_setting_precedence(brainrank_home, monkeypatch):
    assert settings().device == "cpu"
    (brainrank_home / "config.toml").write_text('device = "auto"\n')
    assert settings().device == "auto"
    monkeypatch.setenv("BRAINRANK_DEVICE", "CUDA:1")
    assert settings().device == "cuda:1"
    assert settings(device="mps").device == "mps"


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.parametrize("command", ["run", "extract"])
@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_cli_refuses_a_device_it_cannot_use_up_front(command, device, tiny_plugin_path, tmp_path):
    if device == "cuda" and not _no_gpu():
        pytest.skip("this machine has a GPU")
    db = tmp_path / "lb.db"
    args = ["--plugin", str(tiny_plugin_path), command]
    if command == "run":
        args += ["--models", "tiny/net", "--datasets", "tiny/data", "--metrics", "rsa",
                 "--db", str(db)]  # fmt: skip
    else:
        args += ["tiny/net", "--dataset", "tiny/data", "--metrics", "rsa"]
    result = CliRunner().invoke(main, [*args, "--device", device])
    assert result.exit_code == 1, result.output
    assert "device" in result.output and "cpu" in result.output  # what is there instead
    assert "Traceback" not in result.output
    assert not db.exists()  # nothing was started


@pytest.mark.parametrize("where", ["option", "environment", "config"])
def test_a_refused_device_names_where_it_came_from(where, tiny_plugin_path, tmp_path,
                                                   brainrank_home, monkeypatch):  # fmt: skip
    args = ["--plugin", str(tiny_plugin_path), "run", "--models", "tiny/net", "--datasets",
            "tiny/data", "--metrics", "rsa", "--db", str(tmp_path / "lb.db")]  # fmt: skip
    monkeypatch.delenv("BRAINRANK_DEVICE", raising=False)
    if where == "option":
        args += ["--device", "gpu"]
    elif where == "environment":
        monkeypatch.setenv("BRAINRANK_DEVICE", "gpu")
    else:
        (brainrank_home / "config.toml").write_text('device = "gpu"\n')
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    expected = {
        "option": "from --device",
        "environment": "from the environment variable BRAINRANK_DEVICE",
        "config": "from the device setting of config.toml",
    }[where]
    assert expected in " ".join(result.output.split())


def test_cli_run_on_device_cpu_records_it(tiny_plugin_path, tmp_path):
    db = tmp_path / "lb.db"
    result = CliRunner().invoke(main, ["--plugin", str(tiny_plugin_path), "run", "--models",
                                       "tiny/net", "--datasets", "tiny/data", "--metrics",
                                       "rsa", "--db", str(db), "--device", "cpu", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    from brainrank.leaderboard import open_store

    store = open_store(str(db))
    runs = store.runs_frame()
    store.close()
    config = runs["config"].iloc[-1]
    config = config if isinstance(config, dict) else json.loads(config)
    assert config["device"] == "cpu" and config["extraction"]["device"] == "cpu"
