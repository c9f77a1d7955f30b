"""Real-format datasets scored end to end through the runner, and the plugin contract
(registration, lazy listing)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from dataset_fixtures import make_bold5000, make_nsd

from brainrank.core.registry import Registry, hookimpl
from brainrank.core.specs import DatasetSpec
from brainrank.data.files import DatasetFactory
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores
from brainrank.plugins.datasets import bold5000, kriegeskorte2008, nsd

PLUGIN_MODULES = (
    "brainrank.plugins.datasets.nsd",
    "brainrank.plugins.datasets.bold5000",
    "brainrank.plugins.datasets.allen",
    "brainrank.plugins.datasets.majajhong2015",
    "brainrank.plugins.datasets.kriegeskorte2008",
)


class TinyNSD:
    """A lab's own variant of an NSD spec: the fixture's trial count and ROIs."""

    @hookimpl
    def brainrank_datasets(self):
        factory = DatasetFactory(
            nsd.build,
            nsd.SOURCE,
            {
                "trials_per_session": 6,
                "subjects": (1, 2),
                "rois": ("V1v", "FFA-1"),
                "identifier": "nsd/tiny",
            },
        )
        return [DatasetSpec("nsd/tiny", factory, nsd._metadata("shared1000"))]


def test_pixels_scored_on_fixture_and_real_rdm_datasets(tmp_path, shared_dir):
    from brainrank.plugins.metrics import rsa, srp_ridge
    from brainrank.plugins.models import baselines

    data = tmp_path / "data"
    make_bold5000(data / "bold5000", nan_voxel=False)
    make_nsd(data / "nsd")
    datasets = ["bold5000", "nsd/tiny"]
    real = shared_dir / "data" / "kriegeskorte92"
    if (real / kriegeskorte2008.SUPPLEMENT).is_file():
        (data / "kriegeskorte2008").symlink_to(real)
        datasets.append("kriegeskorte2008")
    registry = Registry(
        plugins=[baselines, bold5000, kriegeskorte2008, TinyNSD(), srp_ridge, rsa],
        entry_points=False,
    )
    store = open_store(str(tmp_path / "lb.db"))
    # the fixtures hold a few stimuli each: the LOO preset applies where the default's nested
    # cross-validation (at least 12 stimuli) refuses them up front
    summary = run_grid(registry=registry, store=store, models=["baseline/pixels"], datasets=datasets,
                       metrics=["srp-ridge:nsd", "rsa"], data_dir=data, progress=False)  # fmt: skip
    assert not summary.failures, summary.failures
    frame = scores(store)
    best = frame[frame["selection"] == "max"]
    got = set(zip(best["dataset"], best["metric"], strict=True))
    assert {
        ("bold5000", "srp-ridge:nsd"),
        ("bold5000", "rsa"),
        ("nsd/tiny", "srp-ridge:nsd"),
        ("nsd/tiny", "rsa"),
    } <= got
    bold = best[(best["dataset"] == "bold5000") & (best["metric"] == "rsa")]
    assert set(bold["region"]) == set(bold5000.ROIS) and set(bold["subject"]) == {
        "CSI1",
        "CSI2",
        "CSI3",
    }
    assert bold["ceiling"].notna().all()
    tiny = best[(best["dataset"] == "nsd/tiny") & (best["metric"] == "srp-ridge:nsd")]
    assert set(tiny["region"]) == {"V1v", "FFA-1"} and tiny["ceiling"].between(0, 1).all()
    if "kriegeskorte2008" in datasets:
        k92 = best[best["dataset"] == "kriegeskorte2008"]
        assert set(k92["metric"]) == {"rsa"}  # regression refused, RSA scored
        assert set(k92["subject"]) == {"BE", "KO", "SN", "TI", "monkeys"}
        assert any("RDMs only" in reason for reason in summary.skipped)
        human = k92[k92["region"] == "hIT"]
        assert human["ceiling"].notna().all() and np.isfinite(human["score"]).all()


def test_listing_is_lazy_and_every_identifier_is_registered():
    code = (
        "import sys, importlib\n"
        f"for name in {list(PLUGIN_MODULES)!r}:\n"
        "    importlib.import_module(name).brainrank_datasets()\n"
        "heavy = {'torch', 'h5py', 'nibabel', 'xarray', 'netCDF4', 'PIL', 'sklearn', 'scipy'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    registry = Registry(
        plugins=[__import__(m, fromlist=["x"]) for m in PLUGIN_MODULES], entry_points=False
    )
    identifiers = set(registry.identifiers("dataset"))
    assert {
        "nsd/shared1000", "nsd/generalisation:subj01", "bold5000", "allen/natural-scenes",
        "majajhong2015/public", "majajhong2015/private", "kriegeskorte2008",
    } <= identifiers  # fmt: skip
    for identifier in identifiers:
        spec = registry.get("dataset", identifier)
        meta = spec.metadata
        assert meta.species and meta.modality and meta.regions and meta.n_stimuli
        assert meta.citation and meta.licence and "eiling" in meta.description
        assert spec.available(data_dir="/nonexistent/folder") is False
