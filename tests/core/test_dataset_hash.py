"""Issue 20, stale ceilings: the dataset's content hash covers everything a score depends
on. A changed reliability coordinate, train/test split or published ceiling (a corrected
file, same responses) changes it, so the next run scores again instead of keeping stale
ceilings; a run over a dataset whose reliability file was corrected rescores it."""

from __future__ import annotations

import json
import textwrap

import numpy as np

import brainrank.testing as bt
from brainrank.core.dataset import Dataset
from brainrank.core.hashing import dataset_hash
from brainrank.core.registry import Registry
from brainrank.grid import run_grid
from brainrank.leaderboard import open_store, scores


def _with_reliability(dataset: Dataset, values) -> Dataset:
    responses = dataset.responses().assign_coords(reliability=("neuroid", np.asarray(values)))
    return Dataset(dataset.identifier, dataset.stimuli, dataset.metadata, responses=responses)


def test_the_hash_changes_with_reliability_split_and_published_ceilings():
    base = bt.example_dataset(n_stimuli=12, n_neuroids=3)
    n = base.responses().sizes["neuroid"]
    a = _with_reliability(base, np.full(n, 0.5))
    b = _with_reliability(base, np.full(n, 0.8))  # same responses, corrected reliabilities
    assert np.array_equal(a.responses().values, b.responses().values)
    assert dataset_hash(a) != dataset_hash(b)
    assert dataset_hash(a) == dataset_hash(_with_reliability(base, np.full(n, 0.5)))

    class Split(Dataset):
        def __init__(self, cut: int):
            super().__init__(base.identifier, base.stimuli, base.metadata, base.responses())
            self.cut = cut

        def train_test_split(self):
            ids = list(self.stimuli.stimulus_ids)
            return ids[: self.cut], ids[self.cut :]

    assert dataset_hash(Split(6)) != dataset_hash(Split(8))

    class Published(Dataset):
        def __init__(self, value: float):
            super().__init__(base.identifier, base.stimuli, base.metadata, base.responses())
            self.value = value

        def ceiling(self, kind):
            return {("s1", "early"): self.value}

    assert Published(0.5).published_ceiling_kinds() == ["encoding", "rsa"]
    assert dataset_hash(Published(0.548)) != dataset_hash(Published(0.894))
    assert base.published_ceiling_kinds() == []  # computed from the (hashed) responses


PLUGIN = textwrap.dedent(
    '''
    """A dataset whose reliabilities come from a file beside it (as NSD's and Allen's)."""
    import json
    from pathlib import Path

    import numpy as np

    import brainrank.testing as bt
    from brainrank.plugin import Dataset, DatasetSpec, hookimpl

    HERE = Path(__file__).parent


    def build(data_dir=None):
        base = bt.example_dataset(n_stimuli=24, n_neuroids=6, seed=3)
        values = json.loads((HERE / "reliability.json").read_text())
        responses = base.responses().assign_coords(reliability=("neuroid", np.asarray(values)))
        return Dataset("filed/data", base.stimuli, base.metadata, responses=responses)


    @hookimpl
    def brainrank_datasets():
        return [DatasetSpec("filed/data", build, bt.example_dataset().metadata)]
    '''
)


def test_a_corrected_reliability_file_rescores_with_the_new_ceiling(tmp_path):
    plugin = tmp_path / "filed.py"
    plugin.write_text(PLUGIN)
    n = 2 * 2 * 6
    (tmp_path / "reliability.json").write_text(json.dumps([0.3] * n))
    store = open_store(str(tmp_path / "lb.db"))

    def run():
        return run_grid(registry=Registry(plugin_files=[plugin]), store=store,
                        models=["baseline/pixels"], datasets=["filed/data"],
                        metrics=["srp-ridge"], progress=False)  # fmt: skip

    first = run()
    assert first.status == "ok" and first.n_scored == 1
    assert run().n_scored == 0  # nothing changed: stored
    (tmp_path / "reliability.json").write_text(json.dumps([0.8] * n))
    third = run()
    assert third.n_scored == 1 and third.n_stored == 0  # the corrected file is scored again
    frame = scores(store, selection="heldout")
    assert not frame.empty
    assert np.allclose(frame["ceiling"], np.sqrt(0.8))  # not the stale sqrt(0.3)
