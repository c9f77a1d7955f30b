"""brainrank.testing: the built-in plugins pass every check, and each check catches the
mistake it is for, with a message that says what to do."""

from __future__ import annotations

import importlib.metadata
import textwrap

import numpy as np
import pytest

import brainrank.testing as bt
from brainrank.core.metric import Metric
from brainrank.core.registry import Registry
from brainrank.core.scores import Score
from brainrank.core.specs import (
    DatasetMetadata,
    DatasetSpec,
    MetricMetadata,
    MetricSpec,
    ModelMetadata,
    ModelSpec,
)

CHEAP_MODELS = ["baseline/pixels", "baseline/gabor", "torchvision/alexnet:random"]


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_every_built_in_spec_has_valid_identifiers_and_metadata(registry):
    specs = [
        spec for kind in ("model", "dataset", "metric") for spec in registry.specs(kind).values()
    ]
    assert len(specs) > 20
    bt.check_identifiers(specs)
    for spec in specs:
        bt.check_metadata(spec)


def test_every_built_in_plugin_lists_lazily():
    modules = sorted(
        {
            ep.value
            for ep in importlib.metadata.entry_points(group="brainrank")
            if ep.value.startswith("brainrank.plugins.")
        }
    )
    assert "brainrank.plugins.models.torchvision" in modules
    for module in modules:
        seen = bt.check_lazy_listing(module)
        assert sum(seen["counts"].values()) > 0, module


@pytest.mark.parametrize("identifier", CHEAP_MODELS)
def test_built_in_models_pass(registry, identifier):
    features = bt.check_model(registry.get("model", identifier))
    assert len(features) >= 1


def test_built_in_datasets_and_metrics_pass(registry):
    dataset = bt.check_dataset(registry.get("dataset", "simulated"))
    assert len(dataset.stimuli) == 200
    for identifier in registry.identifiers("metric"):
        scores = bt.check_metric(registry.get("metric", identifier))
        # variance partitioning scores feature spaces of several models only: each space
        # alone is its per-space row
        assert any(s.selection in ("layer", "alone") for s in scores), identifier


def test_example_inputs():
    stimuli = bt.example_stimuli(4)
    shapes = {stimuli.image(s).shape for s in stimuli.stimulus_ids}
    assert shapes == {(48, 64, 3), (80, 80, 3)}
    dataset = bt.example_dataset(n_stimuli=10, n_neuroids=3)
    assert dataset.responses().shape == (20, 12)
    from brainrank.core.scores import FeatureRequest

    features = bt.example_features(dataset, FeatureRequest(frozenset({16, 1000}), rdm=True))
    layer = features.layers[1]  # 300 features: projected to 16, raw for 1000
    assert layer.projections[16].shape == (10, 16) and layer.projections[1000].shape == (10, 300)
    assert layer.rdm.shape == (10, 10)


# --------------------------------------------------------------------------- broken plugins


def _module(tmp_path, source: str):
    path = tmp_path / "bad_plugin.py"
    path.write_text(textwrap.dedent(source))
    registry = Registry(plugin_files=[path], entry_points=False)
    assert not registry.load_errors, registry.load_errors
    return path, registry


def test_eager_imports_and_data_reads_while_listing_are_caught(tmp_path):
    path, _ = _module(
        tmp_path,
        """
        import torch  # at import time: every `brainrank models` pays for it
        from brainrank import ModelMetadata, ModelSpec, hookimpl

        @hookimpl
        def brainrank_models():
            return [ModelSpec("bad/net", lambda: None, ModelMetadata(source="bad", architecture="x"))]
        """,
    )
    with pytest.raises(bt.PluginCheckError, match=r"imported torch: listing must be lazy"):
        bt.check_lazy_listing(path)
    data = tmp_path / "responses.csv"
    data.write_text("1,2,3\n")
    path.write_text(
        textwrap.dedent(f"""
        from brainrank import DatasetMetadata, DatasetSpec, hookimpl
        N = len(open({str(data)!r}).read().split(","))  # reads data just to be listed

        @hookimpl
        def brainrank_datasets():
            return [DatasetSpec("bad/data", lambda data_dir=None: None,
                                DatasetMetadata(species="x", modality="y", n_stimuli=N))]
        """)
    )
    with pytest.raises(bt.PluginCheckError, match=r"opened .*responses.csv.*must not read data"):
        bt.check_lazy_listing(path)


def test_missing_metadata_is_caught():
    trained = ModelSpec(
        "lab/net", lambda: None, ModelMetadata(source="lab", architecture="net", trained=True)
    )
    with pytest.raises(bt.PluginCheckError, match="task or training data"):
        bt.check_metadata(trained)
    with pytest.raises(bt.PluginCheckError, match="species is empty"):
        bt.check_metadata(DatasetSpec("lab/d", lambda: None, DatasetMetadata("", "fMRI")))
    with pytest.raises(bt.PluginCheckError, match="description is empty"):
        bt.check_metadata(MetricSpec("lab-m", lambda: None, MetricMetadata("")))
    with pytest.raises(bt.PluginCheckError, match="registered twice"):
        bt.check_identifiers([trained, trained])


def _tiny_model(**changes):
    import torch
    from torch import nn

    from brainrank import Model

    def preprocess(image):
        crop = np.asarray(image, dtype=np.float32)[:8, :8] / 255.0 - 0.5
        return torch.from_numpy(crop).permute(2, 0, 1)

    module = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten()).eval()
    fields = dict(
        identifier="lab/tiny",
        module=module,
        preprocess=preprocess,
        preprocess_id="crop8",
        metadata=ModelMetadata(source="lab", architecture="t"),
    )
    fields.update(changes)
    return Model(**fields)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_model_checks_catch_bad_models():
    import torch
    from torch import nn

    assert len(bt.check_model(_tiny_model())) == 2  # relu, flatten repeats it
    grey = _tiny_model(preprocess=lambda im: torch.from_numpy(np.asarray(im, np.float32)[..., 0]))
    with pytest.raises(bt.PluginCheckError, match=r"\(C, H, W\) tensor"):
        bt.check_model(grey)
    uncropped = _tiny_model(
        preprocess=lambda im: torch.from_numpy(np.asarray(im, np.float32)).permute(2, 0, 1)
    )
    with pytest.raises(bt.PluginCheckError, match="different shapes"):
        bt.check_model(uncropped)

    class Exploding(nn.Module):  # infinite (or NaN) wherever the input is below its mean
        def forward(self, x):
            return torch.where(x > x.mean(), x, x / 0.0)

    with pytest.raises(
        bt.PluginCheckError, match=r"NaN or infinite activations.*finite activations"
    ):
        bt.check_model(_tiny_model(module=nn.Sequential(nn.Conv2d(3, 2, 3), Exploding()).eval()))

    class Noisy(nn.Module):
        def forward(self, x):
            return x + torch.rand_like(x)

    with pytest.raises(bt.PluginCheckError, match=r"second pass.*seed any randomness"):
        bt.check_model(_tiny_model(module=nn.Sequential(nn.Conv2d(3, 2, 3), Noisy()).eval()))


def test_dataset_checks_catch_disagreeing_data():
    dataset = bt.example_dataset(n_stimuli=6)
    bt.check_dataset(dataset)
    extra = bt.example_stimuli(8, sizes=((16, 16),))  # two stimuli without responses
    from brainrank import Dataset

    unused = Dataset("lab/d", extra, dataset.metadata, responses=dataset.responses())
    with pytest.raises(bt.PluginCheckError, match="2 stimuli have no responses"):
        bt.check_dataset(unused)
    wrong_regions = Dataset(
        "lab/d",
        dataset.stimuli,
        DatasetMetadata("x", "y", regions=("V1",)),
        responses=dataset.responses(),
    )
    with pytest.raises(bt.PluginCheckError, match=r"regions \['early', 'late'\]"):
        bt.check_dataset(wrong_regions)


def test_metric_checks_catch_wrong_shapes():
    from brainrank.core.scores import FeatureRequest

    class TooFew(Metric):
        identifier = "lab/too-few"

        def feature_request(self, dataset):
            return FeatureRequest(rdm=True)

        def score(self, features, dataset):
            return [
                Score("s1", "early", layer.name, 0.1, layer_index=layer.index) for layer in features
            ]

    with pytest.raises(bt.PluginCheckError, match=r"missing \[\('layer0', 's1', 'late'\)"):
        bt.check_metric(TooFew())

    class Unstorable(TooFew):
        def __init__(self):
            super().__init__(callback=print)

    with pytest.raises(bt.PluginCheckError, match="JSON values"):
        bt.check_metric(Unstorable())


OLD_STYLE_PLUGIN = '''
"""A dataset plugin written against the README of brainrank before its layers were split."""
from pathlib import Path

import brainrank.testing as bt
from brainrank.plugin import DatasetSpec, hookimpl


def _folder(data_dir):
    if data_dir is None:
        from brainrank.config import settings

        data_dir = settings().data_dir
    return Path(data_dir) / "old_lab"


def available(data_dir=None):
    return (_folder(data_dir) / "responses.npz").is_file()


@hookimpl
def brainrank_datasets():
    meta = bt.example_dataset().metadata
    return [DatasetSpec("oldlab/data", lambda data_dir=None: None, meta, available=available)]
'''


def test_a_plugin_using_the_removed_config_module_fails_its_check_naming_the_replacement(
    tmp_path,
):
    """Issue 20: `brainrank.config` was removed with no path forward; `plugin check` ended
    in an uncaught traceback from the plugin's `available()`. The import now still works
    (with a RemovedAPIWarning naming the replacement) and the check fails, saying what to
    use instead."""
    from click.testing import CliRunner

    from brainrank.cli import main
    from brainrank.core.errors import RemovedAPIWarning

    with pytest.warns(RemovedAPIWarning, match=r"brainrank\.plugin\.dataset_folder"):
        from brainrank.config import settings as old_settings
    assert old_settings().data_dir.name == "data"
    path = tmp_path / "old_lab_plugin.py"
    path.write_text(OLD_STYLE_PLUGIN)
    result = CliRunner().invoke(main, ["plugin", "check", str(path), "--no-lazy"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "check failed" in result.output
    assert "brainrank.config.settings was removed" in result.output
    assert "brainrank.plugin.dataset_folder(FOLDER, data_dir)" in result.output


def test_an_available_function_that_raises_is_a_failed_check(tmp_path):
    from brainrank.testing import PluginCheckError

    class Spec:
        identifier = "broken/data"

        def available(self, data_dir=None):
            raise RuntimeError("disk on fire")

    with pytest.raises(PluginCheckError, match="its `available` raised RuntimeError: disk on fire"):
        bt._available(Spec(), None)
