"""``brainrank export rdms``: the RDMs the rsa metric compares, written as rsatoolbox RDMs
(its HDF5 layout) and read back with rsatoolbox; a model's RDMs compared with the brain's by
rsatoolbox give the rsa metric's scores."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.registry import Registry
from brainrank.core.rsa import upper_triangle

rsatoolbox = pytest.importorskip("rsatoolbox")


def export(tiny_plugin_path, *args):
    return CliRunner().invoke(main, ["--plugin", str(tiny_plugin_path), "export", "rdms", *args],
                              catch_exceptions=False)  # fmt: skip


def test_brain_rdms_read_back_with_rsatoolbox(tiny_plugin_path, tmp_path):
    out = tmp_path / "brain.hdf5"
    result = export(tiny_plugin_path, "tiny/data", "--out", str(out))
    assert result.exit_code == 0, result.output
    rdms = rsatoolbox.rdm.load_rdm(str(out))
    registry = Registry(plugin_files=[tiny_plugin_path])
    dataset = registry.get("dataset", "tiny/data").load()
    ids, keys, brain, sizes = registry.get("metric", "rsa").load().brain_rdms(dataset)
    assert rdms.dissimilarity_measure == "correlation"
    np.testing.assert_allclose(rdms.get_vectors(), upper_triangle(brain), atol=1e-12)
    assert list(rdms.rdm_descriptors["region"]) == [k[1] for k in keys]
    assert list(rdms.rdm_descriptors["n_neuroids"]) == sizes
    assert list(rdms.pattern_descriptors["stimulus_id"]) == ids
    assert rdms.descriptors["dataset"] == "tiny/data"
    again = export(tiny_plugin_path, "tiny/data", "--out", str(out))
    assert again.exit_code != 0 and "--overwrite" in again.output


@pytest.mark.parametrize("distance", ["correlation", "euclidean"])
def test_model_rdms_give_the_rsa_metric_s_scores_in_rsatoolbox(tiny_plugin_path, tmp_path,
                                                               distance):  # fmt: skip
    import brainrank

    brain_file, model_file = tmp_path / "brain.h5", tmp_path / "model.h5"
    for args in ((), ("--model", "tiny/net")):
        out = model_file if args else brain_file
        result = export(tiny_plugin_path, "tiny/data", "--distance", distance, *args,
                        "--out", str(out))  # fmt: skip
        assert result.exit_code == 0, result.output
    brain = rsatoolbox.rdm.load_rdm(str(brain_file))
    model = rsatoolbox.rdm.load_rdm(str(model_file))
    expected = {"correlation": "correlation", "euclidean": "squared euclidean"}[distance]
    assert brain.dissimilarity_measure == model.dissimilarity_measure == expected
    theirs = rsatoolbox.rdm.compare(model, brain, method="corr")  # (layers, groups)
    brainrank.get_registry([tiny_plugin_path])
    frame = brainrank.score(
        "tiny/net", "tiny/data", brainrank.load_metric("rsa", distance=distance)
    )
    layers = list(model.rdm_descriptors["layer"])
    regions = list(brain.rdm_descriptors["region"])
    rows = frame[frame["selection"] == "layer"]
    assert len(rows) == len(layers) * len(regions) > 0
    for row in rows.itertuples():
        assert theirs[layers.index(row.layer), regions.index(row.region)] == pytest.approx(
            row.score, abs=1e-9
        )


def test_what_is_refused(tiny_plugin_path, tmp_path):
    result = export(tiny_plugin_path, "tiny/data", "--layers", "conv", "--out",
                    str(tmp_path / "x.h5"))  # fmt: skip
    assert result.exit_code != 0 and "--layers goes with --model" in result.output
    result = export(tiny_plugin_path, "tiny/data", "--model", "tiny/net", "--layers", "nope",
                    "--out", str(tmp_path / "x.h5"))  # fmt: skip
    assert result.exit_code != 0 and "none of the layers ['nope']" in result.output
    assert not (tmp_path / "x.h5").exists()
