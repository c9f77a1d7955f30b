"""The controlled contrasts (brainrank/leaderboard/analyses/contrasts.py) on a synthetic
leaderboard whose differences are known, against scipy.stats and the statistics written out
here; unmatched and untrained models take no part; too few models give a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from brainrank.core.errors import InputError
from brainrank.leaderboard import analyses
from brainrank.leaderboard.analyses import contrasts

REGIONS = ["V1", "V2", "V4", "IT", "FFA", "PPA"]
SSL_GAIN = 0.05  # self-supervised minus supervised, same architecture and data
PLACES_LOSS = -0.03  # Places365 minus ImageNet-1k, same architecture, task and method
TRANSFORMER_GAIN = 0.02  # transformers minus the convnets' mean
MIXER_GAIN = -0.01


def taxonomy(family="convnet", architecture="a", task="classification", data="ImageNet-1k",
             method="supervised", trained=True, cluster=None):  # fmt: skip
    return {"family": family, "architecture": architecture, "task": task,
            "training_data": data, "training_method": method, "trained": trained,
            "task_cluster": cluster}  # fmt: skip


def leaderboard(n_arch: int = 6, seed: int = 0):
    """Per model, one score per region (the same for both subjects) and its taxonomy."""
    rng = np.random.default_rng(seed)
    region_effect = rng.normal(0, 0.1, len(REGIONS))
    values, info = {}, {}

    def add(model, level, meta):
        values[model] = level + region_effect + rng.normal(0, 0.004, len(REGIONS))
        info[model] = meta

    for a in range(n_arch):
        arch = f"arch{a}"
        base = 0.3 + 0.02 * a
        add(f"tv/{arch}", base, taxonomy(architecture=arch))
        add(
            f"tv/{arch}@simclr",
            base + SSL_GAIN + rng.normal(0, 0.005),
            taxonomy(architecture=arch, task="contrastive self-supervision", method="simclr"),
        )
        add(
            f"tv/{arch}@barlow",
            base + SSL_GAIN + rng.normal(0, 0.005),
            taxonomy(
                architecture=arch, task="non-contrastive self-supervision", method="barlowtwins"
            ),
        )
        add(
            f"tv/{arch}@places",
            base + PLACES_LOSS + rng.normal(0, 0.005),
            taxonomy(architecture=arch, data="Places365"),
        )
        add(
            f"tv/{arch}:random",
            0.05,
            taxonomy(architecture=arch, task="none", data="none", method="none", trained=False),
        )
    # unmatched: no supervised network of its architecture, no ImageNet MoCo one; a huge
    # score that would show if it were used
    add("tv/other@moco-places", 1.5, taxonomy(architecture="other", data="Places365",
                                              task="contrastive self-supervision",
                                              method="mocov2"))  # fmt: skip
    add("user/unknown", 1.5, taxonomy(architecture="arch0", task="unknown", method="unknown",
                                      data="unknown"))  # fmt: skip
    conv_mean = np.mean([values[f"tv/arch{a}"] for a in range(n_arch)], axis=0)
    for i in range(5):
        add(
            f"timm/vit{i}",
            conv_mean.mean() - region_effect.mean() + TRANSFORMER_GAIN + rng.normal(0, 0.005),
            taxonomy(family="transformer", architecture=f"vit{i}"),
        )
        add(
            f"timm/mixer{i}",
            conv_mean.mean() - region_effect.mean() + MIXER_GAIN + rng.normal(0, 0.005),
            taxonomy(family="mlp-mixer", architecture=f"mixer{i}"),
        )
    rows = []
    for model, per_region in values.items():
        for region, value in zip(REGIONS, per_region, strict=True):
            for subject in ("s1", "s2"):
                rows.append({"model": model, "dataset": "nsd", "metric": "rsa",
                             "subject": subject, "region": region, "layer": "l",
                             "selection": "max", "score": float(value), **info[model]})  # fmt: skip
    return pd.DataFrame(rows), {m: np.asarray(v) for m, v in values.items()}, info


def written_out(a, b, n_boot=1000, seed=0, ci=0.95):
    """The paired statistics written out: mean difference, percentile bootstrap CI of the
    mean (resampling the pairs), t and p (scipy), Hedges' g of the differences."""
    d = np.asarray(a) - np.asarray(b)
    n = d.size
    index = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    means = d[index].mean(axis=1)
    test = scipy.stats.ttest_rel(a, b)
    g = d.mean() / d.std(ddof=1) * (1 - 3 / (4 * (n - 1) - 1))
    return {"mean": d.mean(), "low": np.quantile(means, (1 - ci) / 2),
            "high": np.quantile(means, 1 - (1 - ci) / 2), "t": test.statistic,
            "p": test.pvalue, "g": g}  # fmt: skip


def check(comparison, expected):
    assert comparison.reason is None
    assert comparison.mean_difference == pytest.approx(expected["mean"], abs=1e-12)
    assert comparison.t == pytest.approx(expected["t"], rel=1e-9)
    assert comparison.p_value == pytest.approx(expected["p"], rel=1e-6)
    assert comparison.hedges_g == pytest.approx(expected["g"], rel=1e-9)
    assert comparison.ci_low == pytest.approx(expected["low"], abs=1e-12)
    assert comparison.ci_high == pytest.approx(expected["high"], abs=1e-12)


def test_self_supervised_against_supervised_within_matched_sets():
    frame, values, _ = leaderboard()
    result = analyses.supervision_contrast(frame, metric="rsa")
    [comparison] = result.comparisons
    assert (comparison.level, comparison.reference) == ("self-supervised", "supervised")
    # pairs: every ImageNet SSL network with its own architecture's supervised network
    a = [values[f"tv/arch{i}{tag}"].mean() for i in range(6) for tag in ("@barlow", "@simclr")]
    b = [values[f"tv/arch{i}"].mean() for i in range(6) for _ in range(2)]
    assert comparison.n == 12 and comparison.n_sets == 6
    check(comparison, written_out(a, b))
    assert comparison.mean_difference == pytest.approx(SSL_GAIN, abs=0.005)
    assert comparison.p_value < 1e-6
    assert comparison.units["unit"].tolist() == [f"tv/arch{i}{t}" for i in range(6)
                                                 for t in ("@barlow", "@simclr")]  # fmt: skip
    # the unmatched Places365 MoCo network, the untrained ones and the unknown checkpoint
    # take no part
    assert "tv/other@moco-places" not in set(comparison.units["unit"])
    assert result.excluded["tv/arch0:random"] == "untrained"
    assert result.excluded["user/unknown"].startswith("no supervision")


def test_per_region_comparisons_are_adjusted_across_regions():
    frame, values, _ = leaderboard()
    comparison = analyses.supervision_contrast(frame, metric="rsa").comparisons[0]
    regions = comparison.regions.set_index("region")
    p = []
    for k, region in enumerate(REGIONS):
        d = [values[f"tv/arch{i}{t}"][k] - values[f"tv/arch{i}"][k] for i in range(6)
             for t in ("@barlow", "@simclr")]  # fmt: skip
        test = scipy.stats.ttest_1samp(d, 0.0)
        assert regions.loc[region, "t"] == pytest.approx(test.statistic, rel=1e-9)
        assert regions.loc[region, "mean_difference"] == pytest.approx(np.mean(d), abs=1e-12)
        p.append(test.pvalue)
    order, running, holm = np.argsort(p), 0.0, np.empty(len(p))
    for rank, i in enumerate(order):  # Holm's step-down, written out
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        holm[i] = running
    np.testing.assert_allclose(regions.loc[REGIONS, "p_holm"], holm, rtol=1e-6)


def test_architecture_families_against_convnets_with_holm_and_bonferroni():
    frame, values, _ = leaderboard()
    result = analyses.architecture_contrast(frame, metric="rsa")
    assert [c.level for c in result.comparisons] == ["mlp-mixer", "transformer"]
    conv = np.mean([values[f"tv/arch{i}"] for i in range(6)], axis=0)  # per region
    tests = {}
    for comparison, prefix in zip(result.comparisons, ("timm/mixer", "timm/vit"), strict=True):
        a = [values[f"{prefix}{i}"].mean() for i in range(5)]
        tests[prefix] = written_out(a, [conv.mean()] * 5)
        check(comparison, tests[prefix])
    mixer, vit = result.comparisons
    assert vit.mean_difference == pytest.approx(TRANSFORMER_GAIN, abs=0.006)
    assert mixer.mean_difference == pytest.approx(MIXER_GAIN, abs=0.006)
    p = np.array([tests["timm/mixer"]["p"], tests["timm/vit"]["p"]])
    first = np.argmin(p)
    holm = np.empty(2)
    holm[first] = min(1, 2 * p[first])
    holm[1 - first] = max(holm[first], min(1, p[1 - first]))
    np.testing.assert_allclose([mixer.p_adjusted, vit.p_adjusted], holm, rtol=1e-6)
    bonferroni = analyses.architecture_contrast(frame, metric="rsa", correction="bonferroni")
    np.testing.assert_allclose([c.p_adjusted for c in bonferroni.comparisons],
                               np.minimum(1, 2 * p), rtol=1e-6)  # fmt: skip
    table = result.table()
    assert list(table["level"]) == ["mlp-mixer", "transformer"] and table["n"].tolist() == [5, 5]


def test_training_data_within_architecture_task_and_method():
    frame, values, _ = leaderboard()
    result = analyses.data_contrast(frame, metric="rsa")
    [comparison] = result.comparisons
    assert comparison.level == "Places365" and comparison.n == 6
    a = [values[f"tv/arch{i}@places"].mean() for i in range(6)]
    b = [values[f"tv/arch{i}"].mean() for i in range(6)]
    check(comparison, written_out(a, b))
    assert comparison.mean_difference == pytest.approx(PLACES_LOSS, abs=0.01)  # 3 SE


def test_regions_as_units():
    frame, values, _ = leaderboard()
    comparison = analyses.supervision_contrast(frame, metric="rsa", unit="regions").comparisons[0]
    ssl = np.mean([np.mean([values[f"tv/arch{i}{t}"] for t in ("@barlow", "@simclr")], axis=0)
                   for i in range(6)], axis=0)  # fmt: skip
    sup = np.mean([values[f"tv/arch{i}"] for i in range(6)], axis=0)
    assert comparison.n == len(REGIONS)
    order = np.argsort(REGIONS)  # the units: regions in the score table's (sorted) order
    assert comparison.units["unit"].tolist() == sorted(REGIONS)
    check(comparison, written_out(ssl[order], sup[order]))


def test_the_matching_is_what_the_numbers_depend_on(monkeypatch):
    """Mutation: matched sets that ignore the controls let the unmatched Places365 MoCo
    network (and other confounded pairs) in, and the known difference is no longer found."""
    frame, _, _ = leaderboard()
    intact = analyses.supervision_contrast(frame, metric="rsa").comparisons[0]
    original = contrasts.matched_sets
    monkeypatch.setattr(
        contrasts,
        "matched_sets",
        lambda info, models, factor, controls: original(info, models, factor, ()),
    )
    broken = analyses.supervision_contrast(frame, metric="rsa").comparisons[0]
    assert intact.mean_difference == pytest.approx(SSL_GAIN, abs=0.005)
    assert broken.mean_difference != pytest.approx(SSL_GAIN, abs=0.005)


def test_too_few_models_and_no_matched_set_give_reasons():
    frame, values, _ = leaderboard(n_arch=2)  # 4 self-supervised / supervised pairs
    comparison = analyses.supervision_contrast(frame, metric="rsa").comparisons[0]
    assert comparison.n == 4 and "fewer than 5" in comparison.reason
    assert np.isnan(comparison.p_value) and np.isnan(comparison.ci_low)
    assert np.isnan(comparison.hedges_g)
    a = [values[f"tv/arch{i}{t}"].mean() for i in range(2) for t in ("@barlow", "@simclr")]
    b = [values[f"tv/arch{i}"].mean() for i in range(2) for _ in range(2)]
    assert comparison.mean_difference == pytest.approx(np.mean(a) - np.mean(b))
    # Taskonomy clusters: no Taskonomy network in this leaderboard
    result = analyses.task_cluster_contrast(frame, metric="rsa")
    assert not result.comparisons and "no matched set" in result.reason
    # a reference no matched set holds
    result = analyses.data_contrast(frame, metric="rsa", reference="JFT-300M")
    assert not result.comparisons and "choose another reference" in result.reason
    with pytest.raises(InputError, match="no 'max' scores of metric 'srp-ridge'"):
        analyses.supervision_contrast(frame, metric="srp-ridge")
    with pytest.raises(InputError, match="unit must be"):
        analyses.supervision_contrast(frame, metric="rsa", unit="subjects")


def test_task_clusters_of_taskonomy_and_the_seed_contrasts():
    rows = []
    rng = np.random.default_rng(2)
    clusters = {"2D": 0.2, "3D": 0.25, "semantic": 0.35}
    values = {}
    for cluster, level in clusters.items():
        for i in range(5):
            model = f"taskonomy/{cluster}{i}"
            values[model] = level + rng.normal(0, 0.01, len(REGIONS))
            meta = taxonomy(architecture="taskonomy-encoder", task=f"taskonomy:{cluster}{i}",
                            data="Taskonomy", method="taskonomy", cluster=cluster)  # fmt: skip
            for region, value in zip(REGIONS, values[model], strict=True):
                rows.append({"model": model, "dataset": "nsd", "metric": "rsa", "subject": "s1",
                             "region": region, "layer": "l", "selection": "max",
                             "score": value, **meta})  # fmt: skip
    frame = pd.DataFrame(rows)
    result = analyses.task_cluster_contrast(frame, metric="rsa")
    assert [c.level for c in result.comparisons] == ["3D", "semantic"]
    reference = np.mean([values[f"taskonomy/2D{i}"].mean() for i in range(5)])
    a = [values[f"taskonomy/3D{i}"].mean() for i in range(5)]
    check(result.comparisons[0], written_out(a, [reference] * 5))
    # one network per task: each task against classification has no matched reference;
    # with the most frequent task as reference, one network each: too few
    tasks = analyses.task_contrast(frame, metric="rsa")
    assert not tasks.comparisons and "choose another reference" in tasks.reason
    every = analyses.seed_contrasts(frame, metric="rsa")
    assert [r.name for r in every] == list(analyses.CONTRASTS)
    assert {r.name: bool(r.comparisons) for r in every}["task_cluster"]


def test_matched_sets_as_units():
    frame, values, _ = leaderboard()
    comparison = analyses.supervision_contrast(frame, metric="rsa", unit="sets").comparisons[0]
    a = [np.mean([values[f"tv/arch{i}{t}"].mean() for t in ("@barlow", "@simclr")])
         for i in range(6)]  # fmt: skip
    b = [values[f"tv/arch{i}"].mean() for i in range(6)]
    assert comparison.n == comparison.n_sets == 6
    check(comparison, written_out(a, b))


def null_frame(rng, n_sets: int, per_set: int, reference=None) -> pd.DataFrame:
    """No difference between the levels: every model's score is its set's level plus noise
    (the reference model's score fixed at ``reference`` when given)."""
    rows = []
    for s in range(n_sets):
        level = rng.normal(0.3, 0.05) if reference is None else reference
        members = [("sup", "classification", "supervised", 1)]
        members += [(f"ssl{j}", "contrastive self-supervision", "simclr", 0)
                    for j in range(per_set)]  # fmt: skip
        for tag, task, method, is_reference in members:
            value = reference if (is_reference and reference is not None) else level
            score = value + rng.normal(0, 0.02) if not (is_reference and reference) else value
            for region in REGIONS[:2]:
                rows.append({"model": f"m{s}/{tag}", "dataset": "d", "metric": "rsa",
                             "subject": "s1", "region": region, "layer": "l",
                             "selection": "max", "score": score,
                             **taxonomy(architecture=f"a{s}", task=task, method=method)})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow  # 800 contrasts, about a minute on 2 cores
@pytest.mark.parametrize(
    ("n_sets", "per_set", "reference"),
    [(8, 1, None),  # one model per level per set: a paired design
     (1, 8, 0.3)],  # one set, one reference model: the levels' models against it
)  # fmt: skip
def test_no_difference_gives_nominal_false_positives(n_sets, per_set, reference):
    """Calibration: with no difference between the levels, p < .05 in about 5% of 400
    leaderboards (binomial 99.9% band: 9 to 35) and the mean difference is 0 within its
    standard error."""
    rng = np.random.default_rng(11)
    p, means = [], []
    for _ in range(400):
        frame = null_frame(rng, n_sets, per_set, reference)
        comparison = analyses.supervision_contrast(frame, metric="rsa", n_boot=10).comparisons[0]
        p.append(comparison.p_value)
        means.append(comparison.mean_difference)
    assert 9 <= int((np.asarray(p) < 0.05).sum()) <= 35
    assert abs(np.mean(means)) < 4 * np.std(means) / np.sqrt(len(means))
