"""Issue 13 item 8 at the level of a run: a dataset of 3 stimuli with ``stacking`` in the
grid used to make the extraction fail for every metric (a 0-dimensional projection). Now
stacking is skipped with a reason naming the minimum, and the other metrics are scored."""

from __future__ import annotations

import textwrap

PLUGIN = textwrap.dedent(
    """
    import numpy as np
    from brainrank.plugin import (
        Dataset, DatasetMetadata, DatasetSpec, StimulusSet, hookimpl, make_responses,
    )

    IDS = ["a", "b", "c"]
    METADATA = DatasetMetadata(species="none", modality="synthetic", regions=("r",), n_stimuli=3)


    def build(data_dir=None):
        rng = np.random.default_rng(0)
        images = {s: rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for s in IDS}
        responses = make_responses(
            rng.standard_normal((6, 4)),
            stimulus_id=IDS * 2,
            repetition=[0, 0, 0, 1, 1, 1],
            neuroid_id=[f"n{i}" for i in range(4)],
            subject="s1",
            region="r",
        )
        return Dataset("few/three", StimulusSet("few", IDS, images.__getitem__), METADATA,
                       responses=responses)


    @hookimpl
    def brainrank_datasets():
        return [DatasetSpec("few/three", build, METADATA)]
    """
)


def test_stacking_on_three_stimuli_is_skipped_and_other_metrics_still_score(tmp_path):
    from brainrank.core.registry import Registry
    from brainrank.grid import run_grid
    from brainrank.leaderboard import open_store, scores

    path = tmp_path / "few_plugin.py"
    path.write_text(PLUGIN)
    store = open_store(str(tmp_path / "lb.db"))
    summary = run_grid(
        registry=Registry(plugin_files=[path]),
        store=store,
        models=["baseline/pixels"],
        datasets=["few/three"],
        metrics=["stacking", "srp-ridge:nsd"],
        progress=False,
    )
    assert not summary.failures, summary.failures
    assert any("stacking" in s and "at least" in s for s in summary.skipped), summary.skipped
    stored = scores(store)
    assert set(stored["metric"]) == {"srp-ridge:nsd"}
    assert len(stored[stored["selection"] == "layer"]) == 1
