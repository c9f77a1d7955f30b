"""Calibration of every metric on data where the answer is known: pure noise scores 0.

The responses are the pure-noise neuroids of ``simulated`` (its ``null`` region, 48
neuroids per subject, and the 12 noise neuroids of each of ``early`` and ``late``, pooled
here as a region ``noise``: 24 per subject), 4 repetitions of 200 stimuli. Nothing in them
depends on the stimuli, so every metric's expected score is 0, for every feature space: the
five baselines (``baseline/gabor``: its pooled layer ``pool`` only) and a random network
(``torchvision/alexnet:random``, four of its layers).

Tolerance, stated and derived from sampling error (never tuned to make a metric pass):

- encoding metrics (a mean over neuroids of a per-neuroid Pearson r): under the null, r
  over ``n`` stimuli has standard deviation ``1 / sqrt(n - 1)`` and the neuroids are
  independent, so the mean over all ``v`` noise neuroids of both subjects and regions
  (``v = 144``) has standard error ``SE = 1 / sqrt((n_eval - 1) v)``, with ``n_eval`` the
  stimuli one r is computed over (the test part of the metric's split; all 200 for LOO);
- RSA-type metrics (one Pearson r between two RDMs per subject and region): the brain RDM of
  pure-noise patterns has no row structure (E[r_ij | x_i] = 0), so its entries are pairwise
  uncorrelated and r has standard deviation ``1 / sqrt(n_pairs)`` with ``n_pairs`` the pairs
  of the stimuli compared (a half split, 100 stimuli, as the most conservative of the
  metrics' splits); the mean over the ``g = 4`` (subject, region) groups has
  ``SE = 1 / sqrt(n_pairs g)``;
- every (metric, feature space, layer or summary row) is one check; the tolerance is
  ``Z * SE`` with ``Z = 4.0``, a two-sided family-wise error of about 1% over the ~100
  checks of this module (Bonferroni; the layers of one model are correlated, so this is
  conservative).

``max`` rows that take the best layer on the scored data are optimistic by construction and
are not checked against 0 (a ``max`` row whose layer was chosen on other stimuli, marked
``extra["chosen_by"]`` as stacking's, is); every other row is (layers, ``heldout``,
``stacked``, ``generalisation``...). ``significance`` rows (the fraction of FDR-significant
neuroids) must be at most q. Independently of noise: no value that is a Pearson r (scores,
the halves, per-neuroid values) lies outside [-1, 1], no fraction outside [0, 1].

Run alone: ``pytest tests/calibration/test_metrics_calibration.py -q``; the measured
values are printed with ``-s`` (``BRAINRANK_CALIBRATION_REPORT=1`` prints a table).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import brainrank
from brainrank.core.dataset import Dataset
from brainrank.core.extraction import ExtractionConfig, extract_features
from brainrank.core.responses import make_responses
from brainrank.core.scores import FeatureRequest, FeatureSet
from brainrank.core.specs import DatasetMetadata
from brainrank.plugins.datasets import simulated

#: the metrics the calibration covers (those not registered yet are skipped, saying so)
#: the NSD paper's protocol, reproduced exactly (equal to the authors' scikit-learn pipeline,
#: tests/plugins/metrics/test_encoding_protocols.py): leave-one-out predictions at a fixed alpha of
#: 1e5 re-estimate the intercept without the held-out stimulus, which anti-correlates them
#: with it; on 200 stimuli pure noise scores -0.11 to -0.31 (-0.02 to -0.05 at the paper's
#: 1000 images). A property of the seed's protocol, stated in docs/validation.md; brainrank's
#: calibrated variant is the default `srp-ridge`. Strict: if the preset ever scores noise
#: at 0, this marker must go.
NSD_PRESET = pytest.param(
    "srp-ridge:nsd",
    marks=pytest.mark.xfail(
        strict=True,
        reason="the NSD paper's LOO protocol at alpha 1e5 scores pure noise below 0 "
        "(its intercept re-estimation); reproduced, documented in docs/validation.md",
    ),
)

#: linear CKA with the biased HSIC: its null expectation is sqrt(d_X d_Y) / (n - 1) > 0 (the
#: participation ratios of the two spectra; brainrank/core/cka.py); registered as a
#: configuration that is NOT calibrated (CKA.calibrated is False for it). Strict: if it ever
#: scores noise at 0, this marker must go.
BIASED_CKA = pytest.param(
    "cka:biased",
    marks=pytest.mark.xfail(
        strict=True,
        reason="the biased HSIC's expectation on independent representations is positive",
    ),
)
#: Brain-Score's protocols: 10 splits x (1 + 2 halves) of PLS or of ridge over 99 alphas on
#: every one of the 9 layers (about 1-2 minutes); the fast calibration of both is in
#: tests/plugins/metrics/test_brainscore.py and tests/calibration/test_mutations.py
SLOW = {"pls", "ridge-cv"}

METRICS = (
    "srp-ridge",
    "srp-ridge:mouse",
    "srp-ridge:nsd",
    "rsa",
    "versa",
    "versa:nsd",
    "stacking",
    "encoding:taskonomy",
    "pls",
    "ridge-cv",
    "cka",
    "cka:biased",
)
#: metrics whose score is one number per subject and region computed over all stimuli (an
#: RDM comparison; linear CKA, whose null standard deviation sqrt(2) / (n - 1) equals the
#: RDM comparison's 1 / sqrt(n (n - 1) / 2) to within 1%)
RDM_METRICS = ("rsa", "versa", "versa:nsd", "versa:generalisation", "cka", "cka:biased")
#: summary rows whose value is a fraction of neuroids (FDR-significant ones), not a score
FRACTION_SELECTIONS = ("significance",)
#: rows whose value is a stacking weight (in [0, 1], a neuroid's weights summing to 1), not a
#: score: no null of 0 to check
WEIGHT_SELECTIONS = ("weight",)
BASELINES = (
    "baseline/pixels",
    "baseline/pixels:native",
    "baseline/gabor",
    "baseline/gist",
    "baseline/rff",
)
RANDOM_NETWORK = "torchvision/alexnet:random"
#: a shallow, two middle and a deep layer (the late region's generating layer among them)
RANDOM_NETWORK_LAYERS = ("features.2", "features.5", "features.11", "classifier.5")
#: layers kept per model to stay fast (others: every layer); gabor's ``energy`` (524,288
#: features) is left out, ``pool`` is the Gabor baseline of the seed paper
SUBSET_LAYERS = {RANDOM_NETWORK: RANDOM_NETWORK_LAYERS, "baseline/gabor": ("pool",)}
Z = 4.0
R_SLACK = 1e-6  # float rounding of an |r| of exactly 1


def noise_dataset() -> Dataset:
    """The pure-noise neuroids of ``simulated``: region ``null`` and region ``noise`` (the
    noise neuroids of ``early`` and ``late``), trial-level, 2 subjects."""
    responses = simulated.build().responses()
    noise = ~responses["signal"].values.astype(bool)
    picked = responses[:, noise]
    assert picked.shape[1] == 2 * (2 * simulated.N_NOISE + simulated.N_NULL) == 144
    assert (picked["true_reliability"].values == 0).all()
    regions = np.where(picked["region"].values.astype(str) == "null", "null", "noise")
    data = make_responses(
        np.asarray(picked.values),
        stimulus_id=picked["stimulus_id"].values,
        repetition=picked["repetition"].values,
        neuroid_id=picked["neuroid_id"].values,
        subject=picked["subject"].values,
        region=regions.astype(object),
        name="noise",
    )
    meta = DatasetMetadata("simulated", "pure noise (calibration)", regions=("noise", "null"))
    return Dataset("test/simulated-noise", simulated.stimulus_set(), meta, responses=data)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return noise_dataset()


def available_metrics() -> list[str]:
    return brainrank.list_metrics()


def load(metric_id: str):
    if metric_id not in available_metrics():
        pytest.skip(f"metric {metric_id!r} is not registered (yet): nothing to calibrate")
    return brainrank.load_metric(metric_id)


@pytest.fixture(scope="module")
def request_all(dataset) -> FeatureRequest:
    """What every registered calibrated metric needs, so features are extracted once."""
    request = FeatureRequest(rdm=True)
    for metric_id in METRICS:
        if metric_id in available_metrics():
            request = request | brainrank.load_metric(metric_id).feature_request(dataset)
    return request


@pytest.fixture(scope="module")
def features(dataset, request_all) -> dict[str, FeatureSet]:
    out = {}
    for model_id in (*BASELINES, RANDOM_NETWORK):
        if model_id not in brainrank.list_models():
            continue
        model = brainrank.load_model(model_id)
        if model_id in SUBSET_LAYERS:
            model.layers = list(SUBSET_LAYERS[model_id])
        out[model_id] = extract_features(model, dataset.stimuli, request_all, ExtractionConfig())
    assert set(BASELINES[:3]) | {RANDOM_NETWORK} <= set(out), sorted(out)
    return out


_SCORES: dict[tuple[str, str], list] = {}


def scores(metric_id: str, model_id: str, features, dataset) -> list:
    key = (metric_id, model_id)
    if key not in _SCORES:
        _SCORES[key] = list(load(metric_id).score(features[model_id], dataset))
    return _SCORES[key]


def n_eval(rows, metric_id: str, dataset) -> int:
    """Stimuli one per-neuroid r (or one RDM) is computed over: the test part of the
    metric's split when its rows say so (``extra["n_test"]`` on any row of the result: the
    per-layer rows of a train/test metric are scored on the same test stimuli), the half
    split for RDM metrics, else every stimulus."""
    tests = [
        int(r.extra[name])
        for r in rows
        for name in ("n_test", "n_eval")
        if isinstance((r.extra or {}).get(name), (int, np.integer)) and r.extra[name] > 0
    ]
    if tests:
        return min(tests)
    n = len(dataset.stimuli)
    return n // 2 if metric_id in RDM_METRICS else n


def pooled(rows) -> tuple[float, int]:
    """Neuroid-weighted mean of the rows' values (encoding) and the neuroid count."""
    values = np.array([r.value for r in rows], dtype=np.float64)
    weights = np.array([max(int(r.n_neuroids or 0), 1) for r in rows], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return float("nan"), 0
    return float(np.average(values[finite], weights=weights[finite])), int(weights[finite].sum())


def standard_error(rows, metric_id: str, dataset, n: int | None = None) -> float:
    splits = [int((r.extra or {}).get("splits", 0)) for r in rows]
    if splits and min(splits) > 0:
        # Brain-Score's protocol: the mean over splits of the median over v neuroids of r
        # over n_test stimuli; a median of v normal values has sd sqrt(pi / 2) / sqrt(v)
        # times theirs, and the splits' test sets are nearly disjoint draws
        n_test = int(rows[0].extra["n_test"])
        v = sum(int(r.n_neuroids or 0) for r in rows)
        if rows[0].selection != "layer":  # the within-half protocols: half the test stimuli
            n_test = int(rows[0].extra.get("n_test_half", n_test))
            return math.sqrt(math.pi / 2) / math.sqrt(2 * min(splits) * (n_test - 1) * v)
        return math.sqrt(math.pi / 2) / math.sqrt(min(splits) * (n_test - 1) * v)
    n = n_eval(rows, metric_id, dataset) if n is None else n
    if metric_id in RDM_METRICS:
        pairs = n * (n - 1) / 2
        return 1.0 / math.sqrt(pairs * len(rows))
    v = sum(int(r.n_neuroids or 0) for r in rows)
    return 1.0 / math.sqrt((n - 1) * v)


def calibration_checks(rows, metric_id: str, dataset) -> list[tuple[str, str, float, float]]:
    """``(selection, layer, pooled value, tolerance)`` for every non-``max`` row group."""
    n = n_eval(rows, metric_id, dataset)
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        if row.selection in FRACTION_SELECTIONS + WEIGHT_SELECTIONS:
            continue
        if row.selection == "max" and not (row.extra or {}).get("chosen_by"):
            continue  # the best layer on the scored data: optimistic by construction
        layer = row.layer if row.selection == "layer" else "-"
        groups.setdefault((row.selection, layer), []).append(row)
    out = []
    for (selection, layer), members in groups.items():
        value, _ = pooled(members)
        out.append((selection, layer, value, Z * standard_error(members, metric_id, dataset, n)))
    return out


def out_of_range(rows, metric_id: str) -> list[str]:
    """Every Pearson-r value outside [-1, 1] (scores, halves and per-neuroid values); for
    a fraction (and its p-values), every value outside [0, 1]."""
    bad = []
    for row in rows:
        values = [row.value, *(row.halves or ())]
        if row.per_neuroid is not None:
            values += np.asarray(row.per_neuroid, dtype=np.float64).tolist()
        if row.selection in FRACTION_SELECTIONS + WEIGHT_SELECTIONS:
            low, high = 0.0, 1.0  # a fraction (per_neuroid: p-values) or a convex weight
        else:
            low, high = -1.0, 1.0
        for value in values:
            if (
                value is not None
                and np.isfinite(value)
                and not low - R_SLACK <= value <= high + R_SLACK
            ):
                bad.append(f"{row.selection}/{row.layer}/{row.subject}/{row.region}: {value:.4f}")
    return bad


MODELS = (*BASELINES, RANDOM_NETWORK)


def _param(metric_id: str, calibration: bool = True):
    if calibration and metric_id == "srp-ridge:nsd":
        return NSD_PRESET
    if calibration and metric_id == "cka:biased":
        return BIASED_CKA
    if metric_id in SLOW:
        return pytest.param(metric_id, marks=pytest.mark.slow)
    return metric_id


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("metric_id", [_param(m) for m in METRICS])
def test_noise_scores_zero_within_sampling_error(metric_id, model_id, features, dataset):
    if model_id not in features:
        pytest.skip(f"model {model_id!r} is not registered")
    rows = scores(metric_id, model_id, features, dataset)
    assert rows, f"{metric_id} returned no rows for {model_id}"
    assert {(r.subject, r.region) for r in rows} == {
        (s, region) for s in simulated.SUBJECTS for region in ("noise", "null")
    }
    checks = calibration_checks(rows, metric_id, dataset)
    assert any(sel == "layer" for sel, *_ in checks), "no per-layer rows to check"
    if os.environ.get("BRAINRANK_CALIBRATION_REPORT"):
        for selection, layer, value, tol in checks:
            print(f"CAL {metric_id:20s} {model_id:28s} {selection:14s} {layer:14s} "
                  f"{value:+.4f} tol {tol:.4f}")  # fmt: skip
    failures = [
        f"{selection}/{layer}: {value:+.4f} (tolerance {tol:.4f})"
        for selection, layer, value, tol in checks
        if not (np.isfinite(value) and abs(value) <= tol)
    ]
    # FDR-controlled discoveries on a map with no signal: at most a fraction q of them
    for row in rows:
        if row.selection in FRACTION_SELECTIONS:
            q = float((row.extra or {}).get("q", 0.05))
            if not row.value <= q:
                failures.append(f"{row.selection}/{row.subject}/{row.region}: {row.value:.3f} > q")
    assert not failures, f"{metric_id} on pure noise with {model_id}: " + "; ".join(failures)


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("metric_id", [_param(m, calibration=False) for m in METRICS])
def test_no_pearson_r_outside_minus_one_one(metric_id, model_id, features, dataset):
    if model_id not in features:
        pytest.skip(f"model {model_id!r} is not registered")
    rows = scores(metric_id, model_id, features, dataset)
    assert rows
    bad = out_of_range(rows, metric_id)
    assert not bad, f"{metric_id} with {model_id}: {len(bad)} values outside [-1, 1]: {bad[:5]}"


def test_the_tolerance_is_what_the_docstring_states(dataset):
    """The arithmetic behind the tolerances: 144 neuroids x 200 stimuli -> SE 0.0059
    (tolerance 0.0236); an RDM over 100 stimuli, 4 groups -> SE 0.0071 (tolerance 0.0284)."""
    from brainrank.core.scores import Score

    rows = [Score("s", "r", "l", 0.0, n_neuroids=36) for _ in range(4)]
    assert standard_error(rows, "srp-ridge", dataset) == pytest.approx(1 / math.sqrt(199 * 144))
    assert Z * standard_error(rows, "srp-ridge", dataset) == pytest.approx(0.0236, abs=1e-4)
    assert Z * standard_error(rows, "rsa", dataset) == pytest.approx(0.0284, abs=1e-4)


# --------------------------------------------------------------------------- issue 20


def averaged_noise_dataset() -> Dataset:
    """The pure-noise neuroids of :func:`noise_dataset`, averaged over repetitions (as many
    users' data come): one response per stimulus, no repetitions, no ceiling."""
    from brainrank.core.responses import average_repetitions

    trials = noise_dataset()
    averaged = average_repetitions(trials.responses())
    assert "repetition" not in averaged.coords and averaged.sizes["presentation"] == 200
    meta = DatasetMetadata("simulated", "pure noise, averaged (calibration)")
    return Dataset("test/simulated-noise-averaged", trials.stimuli, meta, responses=averaged)


def signal_dataset() -> Dataset:
    """``simulated``'s neuroids with signal (``early`` and ``late``), trial-level: real
    structure, to be shuffled."""
    responses = simulated.build().responses()
    picked = responses[:, responses["signal"].values.astype(bool)]
    meta = DatasetMetadata("simulated", "signal neuroids (calibration)", regions=("early", "late"))
    return Dataset("test/simulated-signal", simulated.stimulus_set(), meta, responses=picked)


def calibrated_metrics() -> list[str]:
    return [m for m in METRICS if m in available_metrics() and brainrank.load_metric(m).calibrated]


def _load_fast(metric_id: str):
    """The metric as registered; ``encoding:taskonomy`` with 100 permutations (they decide
    its significance rows only, not the held-out r that is ranked)."""
    if metric_id == "encoding:taskonomy":
        return brainrank.load_metric(metric_id, n_permutations=100)
    return load(metric_id)


@pytest.mark.parametrize("metric_id", METRICS)
def test_repeat_averaged_pure_noise_scores_zero_or_its_chance_level(metric_id, features):
    """Decision 4: calibration covers repeat-averaged data. Every calibrated configuration's
    ranked (declared leak-free) row and layers score 0 within sampling error; an
    uncalibrated one scores what its chance level says (the same protocol, labels
    permuted), within the same tolerance."""
    from brainrank.core.features import score_features

    dataset = averaged_noise_dataset()
    metric = _load_fast(metric_id)
    rows = score_features(metric, features[RANDOM_NETWORK], dataset)
    ranked = [r for r in rows if r.selection == metric.headline]
    assert ranked, f"{metric_id} stores no {metric.headline!r} row"
    checks = calibration_checks(rows, metric_id, dataset)
    assert any(sel == metric.headline for sel, *_ in checks)
    failures = []
    for selection, layer, value, tol in checks:
        members = [r for r in rows if r.selection == selection
                   and (r.layer == layer or selection != "layer")]  # fmt: skip
        if metric.calibrated:
            expected = 0.0
        else:
            chances = [r.chance for r in members if r.chance is not None]
            assert chances, f"{metric_id} ({selection}/{layer}) has no chance level"
            expected = float(np.mean(chances))
        if not (np.isfinite(value) and abs(value - expected) <= tol + (0 if metric.calibrated
                                                                        else 2 * tol)):  # fmt: skip
            failures.append(f"{selection}/{layer}: {value:+.4f} vs {expected:+.4f} (tol {tol:.4f})")
    assert not failures, f"{metric_id} on repeat-averaged noise: " + "; ".join(failures)


N_SHUFFLES = 6


@pytest.mark.slow
@pytest.mark.parametrize("metric_id", METRICS)
def test_a_stimulus_shuffled_dataset_with_structure_scores_zero(metric_id, features):
    """Decision 4: on ``simulated``'s signal neuroids with the stimulus correspondence
    broken (statistics and structure kept), the ranked value of a deep random network is 0
    within sampling error for every calibrated configuration.

    The neuroids and the RDM entries of structured data are correlated, so the tolerance is
    not the independent-noise formula: it is the spread of the ranked value over
    ``N_SHUFFLES`` seeded shuffles, ``Z * sd / sqrt(N_SHUFFLES)`` (a t statistic with 5
    degrees of freedom beyond 4 has probability 0.01). A leaky protocol fails it: see
    :func:`test_the_shuffled_check_catches_a_leak`."""
    from brainrank.core.chance import PermutedDataset, stimulus_permutation

    metric = _load_fast(metric_id)
    if not metric.calibrated:
        pytest.skip(f"{metric_id} is not calibrated: its chance level is stored instead")
    base = signal_dataset()
    ids = base.stimuli.stimulus_ids
    means = []
    for seed in range(N_SHUFFLES):
        shuffled = PermutedDataset(base, stimulus_permutation(ids, 1000 + seed))
        rows = [r for r in metric.score(features[RANDOM_NETWORK], shuffled)
                if r.selection == metric.headline]  # fmt: skip
        assert rows, f"{metric_id} stores no {metric.headline!r} row"
        means.append(float(np.nanmean([r.value for r in rows])))
    mean, sd = float(np.mean(means)), float(np.std(means, ddof=1))
    assert abs(mean) <= Z * sd / math.sqrt(N_SHUFFLES), (metric_id, means)


@pytest.mark.slow
def test_the_shuffled_check_catches_a_leak(features):
    """The check above has power: the paper's leave-one-out veRSA (mode="loo"), whose
    predictions carry the held-out response (alpha 1e5, as the paper), fails it on the same
    shuffled data."""
    from brainrank.core.chance import PermutedDataset, stimulus_permutation

    metric = brainrank.load_metric("versa", mode="loo", alphas=[1e5])
    assert not metric.calibrated
    base = signal_dataset()
    ids = base.stimuli.stimulus_ids
    means = []
    for seed in range(N_SHUFFLES):
        shuffled = PermutedDataset(base, stimulus_permutation(ids, 1000 + seed))
        rows = [
            r for r in metric.score(features[RANDOM_NETWORK], shuffled) if r.selection == "layer"
        ]
        means.append(float(np.nanmean([r.value for r in rows])))
    mean, sd = float(np.mean(means)), float(np.std(means, ddof=1))
    assert abs(mean) > Z * sd / math.sqrt(N_SHUFFLES), means


def test_every_metric_declares_a_ranked_row_it_stores(features):
    """Decision 2, for every registered metric: the row it declares leak-free is among the
    rows it stores, and the ranking takes exactly that row."""
    import pandas as pd

    from brainrank.core.features import score_features
    from brainrank.leaderboard.ranking import DESCRIPTIVE_METRICS, rank_models

    dataset = averaged_noise_dataset()
    checked = []
    for metric_id in available_metrics():
        metric = _load_fast(metric_id)
        try:
            metric.check_applicable(dataset)
        except brainrank.NotApplicableError:
            continue
        if metric_id in DESCRIPTIVE_METRICS:
            # describes the features, not a comparison with the brain: never ranked
            assert metric.headline is None, metric_id
            continue
        assert metric.headline, f"{metric_id} declares no headline row"
        rows = score_features(metric, features[RANDOM_NETWORK], dataset)
        assert metric.headline in {r.selection for r in rows}, metric_id
        common = dict(dataset="d", metric=metric_id, metric_hash=metric.config_hash,
                      headline=metric.headline, calibrated=metric.calibrated)  # fmt: skip
        frame = pd.DataFrame(
            [
                dict(
                    model=m,
                    subject=r.subject,
                    region=r.region,
                    selection=r.selection,
                    score=r.value,
                    **common,
                )
                for m in ("a", "b")
                for r in rows
            ]
        )
        [ranking] = rank_models(frame, ci=None, include_uncalibrated=True)
        assert ranking.columns, metric_id
        assert any(f"'{metric.headline}'" in n for n in ranking.notes), (metric_id, ranking.notes)
        ranked = frame[frame["selection"] == metric.headline].groupby("model")["score"].mean()
        table = ranking.table.set_index("model")
        assert table.loc["a", ranking.columns[0]] == pytest.approx(ranked["a"]), metric_id
        checked.append(metric_id)
    assert {"srp-ridge", "rsa", "versa", "stacking", "versa:nsd"} <= set(checked), checked
