"""A leaderboard with what every analysis section of the report needs (tests of
brainrank/leaderboard/report_analyses.py): trained and random models of two families with
parameter counts and top-1, Allen datasets built with different reliability thresholds and
cre lines (separate entries), per-neuroid values, effective dimensionality, rsa and versa on
the embedded ``simulated`` dataset (two subjects, loadable for the reference points) and a
generalisation run."""

from __future__ import annotations

import zlib

import numpy as np

from brainrank.core.metric import Metric
from brainrank.core.registry import get_registry
from brainrank.core.scores import Score
from brainrank.core.specs import DatasetMetadata, DatasetSpec, ModelMetadata
from brainrank.leaderboard import open_store

AREAS = ("VISp", "VISl", "VISam")
THRESHOLDS = (0.5, 0.7, 0.8)
CRE_LINES = ("Cux2", "Rorb")
LAYERS = ("l0", "l1", "l2", "l3")
N_NEUROIDS = 12


class Dimensionality(Metric):
    identifier = "effective-dimensionality"


class Generalisation(Metric):
    identifier = "versa:generalisation"
    headline = "generalisation"


def models() -> dict[str, tuple[ModelMetadata, float]]:
    out = {}
    for family, stem, level in (("transformer", "vit", 0.34), ("convnet", "conv", 0.3)):
        for i in range(5):
            name = f"timm/{stem}{i}"
            meta = dict(source="timm", architecture=f"{stem}{i}", family=family)
            out[name] = (ModelMetadata(**meta, n_params=(i + 1) * 10**7,
                                       imagenet_top1=70.0 + 2 * i), level + 0.01 * i)  # fmt: skip
            if i < 2:
                out[f"{name}:random"] = (ModelMetadata(**meta, trained=False), level / 3)
    return out


def _rng(*parts) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(map(str, parts)).encode()))


def _encoding_rows(model: str, level: float, dataset: str, regions, subject="pooled"):
    rows = []
    for region in regions:
        ids = tuple(f"{region}-{i}" for i in range(N_NEUROIDS))
        shared = _rng(dataset, region).normal(0, 0.05, N_NEUROIDS)
        for index, layer in enumerate(LAYERS):
            values = level + 0.02 * index + shared + _rng(model, dataset, region, layer).normal(
                0, 0.02, N_NEUROIDS)  # fmt: skip
            rows.append(Score(subject, region, layer, float(values.mean()), N_NEUROIDS,
                              layer_index=index, relative_depth=index / 3,
                              per_neuroid=values.astype(np.float32), neuroid_ids=ids))  # fmt: skip
        best = rows[-1]
        rows.append(Score(subject, region, best.layer, best.value, N_NEUROIDS, selection="max",
                          layer_index=3, relative_depth=1.0))  # fmt: skip
        rows.append(Score(subject, region, best.layer, best.value - 0.01, N_NEUROIDS,
                          selection="heldout", layer_index=3, relative_depth=1.0,
                          extra={"layers": [best.layer, best.layer]}))  # fmt: skip
    return rows


def _population_rows(level: float, regions, subjects, seed: str):
    rows = []
    for subject in subjects:
        for region in regions:
            value = level + _rng(seed, subject, region).normal(0, 0.02)
            for selection in ("layer", "max", "heldout"):
                rows.append(Score(subject, region, "l3", float(value), 0, selection=selection,
                                  layer_index=3, relative_depth=1.0))  # fmt: skip
    return rows


def build(path) -> object:
    store = open_store(f"sqlite:///{path}")
    registry = get_registry()
    ridge = registry.get("metric", "srp-ridge").load()
    rsa = registry.get("metric", "rsa").load()
    versa = registry.get("metric", "versa").load(alphas=[1.0, 100.0])
    for metric in (ridge, rsa, versa, Dimensionality(), Generalisation()):
        store.register_metric(metric)
    # variants named as `brainrank run --dataset-option` names them; the default threshold
    # (0.8) is the base dataset itself
    datasets = [f"allen/natural-scenes(reliability_threshold={t})" for t in THRESHOLDS[:-1]]
    datasets += ["allen/natural-scenes"]
    datasets += [f'allen/natural-scenes(cre_lines=["{c}"])' for c in CRE_LINES]
    for dataset in ["allen/natural-scenes", "nsd/generalisation:subj01"]:
        meta = DatasetMetadata(species="mouse" if "allen" in dataset else "human", modality="x")
        store.register_dataset(DatasetSpec(dataset, lambda **_: None, meta, plugin="test"))
    store.register_dataset(registry.get("dataset", "simulated"))
    for model, (meta, level) in models().items():
        store.register_model(model, meta)
        for k, dataset in enumerate(datasets):
            shift = 0.03 * k if k < len(THRESHOLDS) else -0.02 * k
            store.write_scores(
                run_id=None,
                model=model,
                dataset=dataset,
                metric=ridge,
                scores=_encoding_rows(model, level + shift, dataset, AREAS),
            )
            store.write_scores(run_id=None, model=model, dataset=dataset, metric=rsa,
                               scores=_population_rows(level + 0.1 + shift, AREAS, ["pooled"],
                                                       model + dataset))  # fmt: skip
        regions, subjects = ("early", "late"), ("sim-01", "sim-02")
        store.write_scores(run_id=None, model=model, dataset="simulated", metric=rsa,
                           scores=_population_rows(level, regions, subjects, model))  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset="simulated", metric=versa,
                           scores=_population_rows(level + 0.15, regions, subjects,
                                                   model + "v"))  # fmt: skip
        dims = [Score("all", "features", layer, 10.0 + 5 * i + 30 * level, 0,
                      layer_index=i, relative_depth=i / 3) for i, layer in enumerate(LAYERS)]  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset=datasets[-1], metric=Dimensionality(),
                           scores=dims)  # fmt: skip
        generalisation = []
        for region in ("V1", "FFA"):
            for i, layer in enumerate(LAYERS):
                train = level + 0.02 * i + _rng(model, region, layer).normal(0, 0.01)
                generalisation.append(Score("subj01", region, layer, train - 0.01, 0,
                                            layer_index=i, relative_depth=i / 3,
                                            extra={"train": train}))  # fmt: skip
        store.write_scores(run_id=None, model=model, dataset="nsd/generalisation:subj01",
                           metric=Generalisation(), scores=generalisation)  # fmt: skip
    return store


def small_simulated(n_stimuli: int = 30, n_voxels: int = 12, seed: int = 0):
    """A stand-in for ``simulated`` that is quick to build: two subjects, regions early and
    late, the same stimuli (for the reference-point section in the fast tests)."""
    from brainrank.core.dataset import Dataset
    from brainrank.core.responses import make_responses
    from brainrank.core.stimuli import StimulusSet

    rng = np.random.default_rng(seed)
    ids = [f"s{i}" for i in range(n_stimuli)]
    latent = rng.standard_normal((n_stimuli, 4))
    blocks, subjects, regions, neuroids = [], [], [], []
    for subject in ("sim-01", "sim-02"):
        for region in ("early", "late"):
            weights = rng.standard_normal((4, n_voxels))
            blocks.append(latent @ weights + rng.standard_normal((n_stimuli, n_voxels)))
            subjects += [subject] * n_voxels
            regions += [region] * n_voxels
            neuroids += [f"{subject}-{region}-{v}" for v in range(n_voxels)]
    responses = make_responses(np.hstack(blocks), stimulus_id=ids, neuroid_id=neuroids,
                               subject=np.array(subjects), region=np.array(regions))  # fmt: skip
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    stimuli = StimulusSet("small-simulated", ids, lambda _: image)
    return Dataset("simulated", stimuli, DatasetMetadata("simulated", "test"), responses)
