"""Brain-Score's own metric implementations as an oracle for brainrank (run by hand).

brainscore-vision 2.4.2 pins numpy < 2 and scikit-learn < 1.6, so it cannot share
brainrank's environment: this one file runs in both, in three steps that exchange ``.npz``
files (see ``README.md`` next to it for the commands and the install recipe):

1. ``export`` (brainrank's environment): the ``simulated`` dataset's trial-averaged and
   trial-level responses of every (subject, region), in the order of their sorted stimulus
   ids (the order of Brain-Score's trial-averaged assemblies, whose averaging sorts the
   presentations), and the full activations of a few model layers on its 200 stimuli;
2. ``brainscore`` (Brain-Score's environment, no brainrank import): builds
   ``NeuroidAssembly`` objects from them and scores every (layer, subject, region) with
   ``brainscore_vision.load_metric("ridge" | "pls" | "rdm" | "cka" | "cka_biased")`` and
   with ``CrossRegressedCorrelation(ridge_cv_regression())`` (RidgeCV over Brain-Score's
   ``ALPHA_LIST`` in the same cross-validation: its ``ridgecv_split`` regression), splits
   stratified by ``object_name`` (the simulated stimuli's kind: grating, shape, texture),
   recording the splits and the per-split, per-neuroid correlations it used; and computes
   ``load_ceiling("internal_consistency")`` of every group's trials;
3. ``compare`` (brainrank's environment, no brainscore import): scores the same features
   with brainrank's metrics, end to end, and prints both side by side with their
   differences:

   - ``pls``: brainrank's ``pls`` (25 components, the same splits drawn by brainrank,
     checked equal to Brain-Score's; the layer's raw activations as features);
   - ``ridge``: brainrank's ``ridge-cv`` with ``alphas=[1]`` (Brain-Score's ``ridge``);
   - ``ridgecv``: brainrank's ``ridge-cv`` (``ALPHA_LIST``, one alpha per region);
   - ``cka``, ``cka_biased``: brainrank's ``cka`` and ``cka:biased``;
   - ``rdm``: brainrank's ``rsa`` with ``comparison="spearman"`` (features' exact RDM);
   - ``ceiling``: brainrank's internal consistency (``extra["internal_consistency"]`` of
     the ``pls`` rows) against Brain-Score's ``internal_consistency`` ceiling.

   brainrank's metrics get the layer's full activations where they ask for the projection
   (so both sides see the same features; the projection's own effect is measured in
   ``tests/plugins/metrics/test_brainscore.py`` and docs/validation.md) and stratify by
   the same labels (``stratify_by="kind"``).

Nothing here is part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

LAYERS = {
    "baseline/gabor": ["pool"],
    "torchvision/alexnet:random": ["classifier.5", "features.11"],
    "baseline/pixels": ["pixels"],
}
BRAINSCORE_METRICS = ("ridge", "ridgecv", "pls", "rdm", "cka", "cka_biased")
#: Brain-Score's PLS (scikit-learn's, power iterations on the full feature matrix, 25
#: components x 10 splits) takes hours on the 43,264 / 150,528 features of the larger
#: layers on 2 cores; it is run on the layers up to this size only.
PLS_MAX_FEATURES = 5000
#: brainrank metric (and parameters) standing for each Brain-Score metric
BRAINRANK = {
    "ridge": ("ridge-cv", {"alphas": [1.0], "stratify_by": "kind"}),
    "ridgecv": ("ridge-cv", {"stratify_by": "kind"}),
    "pls": ("pls", {"stratify_by": "kind"}),
    "rdm": ("rsa", {"comparison": "spearman"}),
    "cka": ("cka", {}),
    "cka_biased": ("cka:biased", {}),
}
#: agreement required where the arithmetic is the same
TOLERANCE = 1e-6
#: PLS: Brain-Score's numbers come from scikit-learn's power iterations, stopped when the
#: weights change by less than 1e-3; brainrank's are exact (README.md)
PLS_TOLERANCE = 5e-3


# --------------------------------------------------------------------------- 1. export


def export(out: str) -> None:
    import brainrank
    from brainrank.core.extraction import layer_activations
    from brainrank.core.responses import average_repetitions, neuroid_groups

    dataset = brainrank.load_dataset("simulated")
    responses = dataset.responses()
    averaged = average_repetitions(responses)
    order = np.argsort(averaged["stimulus_id"].values.astype(str))
    ids = [str(s) for s in averaged["stimulus_id"].values[order]]
    images = [dataset.stimuli.image(s) for s in ids]
    kinds = np.asarray(dataset.stimuli.metadata.loc[ids, "kind"], dtype=str)
    arrays: dict[str, np.ndarray] = {
        "stimulus_id": np.asarray(ids),
        "kind": kinds,
        "responses": np.asarray(averaged.values, dtype=np.float64)[order],
        "neuroid_id": averaged["neuroid_id"].values.astype(str),
        "trials": np.asarray(responses.values, dtype=np.float64),
        "trial_stimulus": responses["stimulus_id"].values.astype(str),
        "trial_repetition": np.asarray(responses["repetition"].values),
    }
    groups = []
    for g, ((subject, region), index) in enumerate(neuroid_groups(averaged)):
        arrays[f"group{g}"] = index
        groups.append([subject, region])
    layers = []
    for model_id, names in LAYERS.items():
        acts = layer_activations(brainrank.load_model(model_id), images, names)
        for name in names:
            arrays[f"layer{len(layers)}"] = acts[name].astype(np.float64)
            layers.append([model_id, name])
    arrays["index"] = np.asarray(json.dumps({"groups": groups, "layers": layers}))
    np.savez_compressed(out, **arrays)
    print(f"wrote {out}: {len(layers)} layers, {len(groups)} (subject, region) groups")


def _read(path: str):
    data = np.load(path, allow_pickle=False)
    index = json.loads(str(data["index"]))
    return data, index


# --------------------------------------------------------------------------- 2. brainscore


def _brainscore_metric(name: str):
    import brainscore_vision

    crossvalidation = {"stratification_coord": "object_name"}
    if name == "ridgecv":
        from brainscore_vision.metrics.regression_correlation.metric import (
            CrossRegressedCorrelation,
            pearsonr_correlation,
            ridge_cv_regression,
        )

        return CrossRegressedCorrelation(
            regression=ridge_cv_regression(),
            correlation=pearsonr_correlation(),
            crossvalidation_kwargs=crossvalidation,
        )
    if name in ("ridge", "pls"):
        return brainscore_vision.load_metric(name, crossvalidation_kwargs=crossvalidation)
    return brainscore_vision.load_metric(name)


def run_brainscore(data_path: str, out: str) -> None:
    import brainscore_vision
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    data, index = _read(data_path)
    ids = data["stimulus_id"].astype(str)
    kinds = data["kind"].astype(str)
    kind_of = dict(zip(ids, kinds, strict=True))

    def assembly(values: np.ndarray, neuroid_ids, stimulus=ids, extra=None) -> NeuroidAssembly:
        coords = {
            "stimulus_id": ("presentation", stimulus),
            "object_name": ("presentation", np.array([kind_of[s] for s in stimulus])),
            "neuroid_id": ("neuroid", np.asarray(neuroid_ids).astype(str)),
            "neuroid_num": ("neuroid", np.arange(values.shape[1])),
            **(extra or {}),
        }
        return NeuroidAssembly(values, coords=coords, dims=["presentation", "neuroid"])

    results: dict[str, np.ndarray] = {}
    for gi, (subject, region) in enumerate(index["groups"]):
        cols = data[f"group{gi}"]
        trials = assembly(
            data["trials"][:, cols],
            data["neuroid_id"][cols],
            stimulus=data["trial_stimulus"].astype(str),
            extra={"repetition": ("presentation", data["trial_repetition"])},
        )
        ceiling = brainscore_vision.load_ceiling("internal_consistency")(trials)
        results[f"ceiling|{gi}"] = np.asarray(float(ceiling.values))
        print(f"ceiling {subject} {region:6s} {float(ceiling.values):+.6f}", flush=True)
    for li, (model_id, layer) in enumerate(index["layers"]):
        X = data[f"layer{li}"]
        source = assembly(X, [f"f{i}" for i in range(X.shape[1])])
        for gi, (subject, region) in enumerate(index["groups"]):
            cols = data[f"group{gi}"]
            target = assembly(data["responses"][:, cols], data["neuroid_id"][cols])
            for name in BRAINSCORE_METRICS:
                key = f"{li}:{gi}:{name}"
                if name == "pls" and X.shape[1] > PLS_MAX_FEATURES:
                    results[f"value|{key}"] = np.asarray(float("nan"))
                    continue
                metric = _brainscore_metric(name)
                record = []
                if hasattr(metric, "apply"):  # the cross-validated regressions: keep splits
                    original = metric.apply

                    def apply(
                        src_train, tgt_train, src_test, tgt_test, _m=metric, _orig=original,
                        _rec=record,
                    ):  # fmt: skip
                        score = _orig(src_train, tgt_train, src_test, tgt_test)
                        fitted = _m.regression._regression
                        _rec.append(
                            (
                                src_train["stimulus_id"].values.astype(str),
                                src_test["stimulus_id"].values.astype(str),
                                np.asarray(score.sortby("neuroid_id").values, dtype=np.float64),
                                float(getattr(fitted, "alpha_", np.nan)),
                            )
                        )
                        return score

                    metric.apply = apply
                try:
                    score = metric(source, target)
                    value = (
                        float(score.values)
                        if score.ndim == 0
                        else float(score.sel(aggregation="center"))
                    )
                except Exception as exc:  # a failure is reported, not hidden
                    value = float("nan")
                    print(
                        f"brainscore {name} failed on {model_id}/{layer}/{subject}/{region}: {exc!r}"
                    )
                results[f"value|{key}"] = np.asarray(value)
                for s, (train, test, per, alpha) in enumerate(record):
                    results[f"train|{key}|{s}"] = train
                    results[f"test|{key}|{s}"] = test
                    results[f"r|{key}|{s}"] = per
                    results[f"alpha|{key}|{s}"] = np.asarray(alpha)
                print(
                    f"{model_id:28s} {layer:12s} {subject} {region:6s} {name:10s} {value:+.6f}",
                    flush=True,
                )
    np.savez_compressed(out, **results)
    print(f"wrote {out}")


# --------------------------------------------------------------------------- 3. compare


def compare(data_path: str, bs_path: str) -> int:
    import brainrank
    from brainrank.core import splits as cv
    from brainrank.core.rsa import rdm
    from brainrank.core.scores import FeatureSet, LayerFeatures

    data, index = _read(data_path)
    bs = np.load(bs_path, allow_pickle=False)
    ids = list(data["stimulus_id"].astype(str))
    dataset = brainrank.load_dataset("simulated")
    metrics = {name: brainrank.load_metric(m, **p) for name, (m, p) in BRAINRANK.items()}
    request = None
    for metric in metrics.values():
        need = metric.feature_request(dataset)
        request = need if request is None else request | need

    # brainrank's own splits (over the sorted ids, by kind) against Brain-Score's recorded ones
    splits = cv.shuffle_splits(len(ids), data["kind"].astype(str))
    key = "0:0:ridge"
    same_splits = (
        all(
            set(bs[f"test|{key}|{s}"].astype(str)) == {ids[i] for i in test}
            for s, (_, test) in enumerate(splits)
        )
        and f"test|{key}|{len(splits) - 1}" in bs
    )

    rows = []
    pls_rows: dict = {}
    iterations = 0.0  # Brain-Score's PLS vs scikit-learn's, same splits, in this environment
    for li, (model_id, layer) in enumerate(index["layers"]):
        X = data[f"layer{li}"]
        features = FeatureSet(
            model_id,
            tuple(ids),
            [
                LayerFeatures(
                    layer, 0, 0.0, X.shape[1], (X.shape[1],),
                    projections={k: X.astype(np.float32) for k in request.projection_dims},
                    rdm=rdm(X, dtype="float64"),
                )
            ],
        )  # fmt: skip
        ours = {}
        for name, metric in metrics.items():
            if name == "pls" and X.shape[1] > PLS_MAX_FEATURES:
                continue
            scored = [r for r in metric.score(features, dataset) if r.selection == "layer"]
            ours[name] = {(r.subject, r.region): r for r in scored}
        pls_rows.update(ours.get("pls", {}))
        for gi, (subject, region) in enumerate(index["groups"]):
            for name in BRAINSCORE_METRICS:
                theirs = float(bs[f"value|{li}:{gi}:{name}"])
                row = ours.get(name, {}).get((subject, region))
                mine = float("nan") if row is None else float(row.value)
                note = ""
                if name in ("ridge", "ridgecv", "pls") and row is not None:
                    k = f"{li}:{gi}:{name}"
                    per = np.array([bs[f"r|{k}|{s}"] for s in range(len(splits))])
                    order = np.argsort(np.asarray(row.neuroid_ids))
                    # per-neuroid r averaged over splits, both sides
                    note = (
                        f"per-neuroid {np.nanmax(np.abs(per.mean(0) - row.per_neuroid[order])):.1e}"
                    )
                    if name == "pls":
                        same = sklearn_pls_on_recorded_splits(data, bs, ids, X, gi, k, len(splits))
                        iterations = max(iterations, abs(same - theirs))
                        note += f"; Brain-Score vs scikit-learn's PLS here {abs(same - theirs):.1e}"
                    if name == "ridgecv":
                        alphas = [float(bs[f"alpha|{k}|{s}"]) for s in range(len(splits))]
                        note += "; alphas " + (
                            "same" if alphas == row.extra["alphas"] else "DIFFER"
                        )
                elif name == "pls":
                    note = f"not run (layer above {PLS_MAX_FEATURES} features)"
                rows.append(
                    (model_id, layer, subject, region, name, theirs, mine, abs(theirs - mine), note)
                )
    for gi, (subject, region) in enumerate(index["groups"]):
        theirs = float(bs[f"ceiling|{gi}"])
        mine = float(pls_rows[(subject, region)].extra["internal_consistency"])
        rows.append(
            (
                "-",
                "-",
                subject,
                region,
                "ceiling",
                theirs,
                mine,
                abs(theirs - mine),
                "internal consistency",
            )
        )

    print(f"brainrank's splits equal Brain-Score's: {'yes' if same_splits else 'NO'}")
    print(f"{'model':28s} {'layer':12s} {'subject':7s} {'region':6s} {'metric':10s} "
          f"{'brainscore':>11s} {'brainrank':>11s} {'|diff|':>9s} note")  # fmt: skip
    worst: dict[str, float] = {}
    for model_id, layer, subject, region, name, theirs, mine, diff, note in rows:
        if np.isfinite(diff):
            worst[name] = max(worst.get(name, 0.0), diff)
        print(f"{model_id:28s} {layer:12s} {subject:7s} {region:6s} {name:10s} {theirs:+11.6f} "
              f"{mine:+11.6f} {diff:9.2e} {note}")  # fmt: skip
    print(
        "largest |brainscore - brainrank|: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
    )
    print(
        f"pls: Brain-Score vs scikit-learn's PLSRegression (default tol) on the same splits "
        f"{iterations:.2e}: the brainrank difference is scikit-learn's power-iteration tolerance"
    )
    exact = [k for k in worst if k != "pls"]
    ok = (
        same_splits
        and all(worst[k] < TOLERANCE for k in exact)
        and iterations < TOLERANCE
        and worst.get("pls", 0.0) < PLS_TOLERANCE
    )
    return 0 if ok else 1


def sklearn_pls_on_recorded_splits(data, bs, ids, X, gi, key, n_splits) -> float:
    """Brain-Score's arithmetic in brainrank's environment: scikit-learn's PLSRegression(25,
    scale=False) with its default power-iteration tolerance, on Brain-Score's recorded
    splits, targets in the assembly's neuroid order, Pearson r, median, mean. It isolates
    what makes brainrank's exact PLS differ from Brain-Score's numbers."""
    import scipy.stats
    from sklearn.cross_decomposition import PLSRegression

    position = {s: i for i, s in enumerate(ids)}
    cols = data[f"group{gi}"]
    Y = data["responses"][:, cols]
    medians = []
    for s in range(n_splits):
        train = np.array([position[t] for t in bs[f"train|{key}|{s}"].astype(str)])
        test = np.array([position[t] for t in bs[f"test|{key}|{s}"].astype(str)])
        model = PLSRegression(n_components=25, scale=False).fit(X[train], Y[train])
        predicted = model.predict(X[test])
        r = [scipy.stats.pearsonr(predicted[:, j], Y[test, j])[0] for j in range(Y.shape[1])]
        medians.append(np.median(r))
    return float(np.mean(medians))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("export", help="brainrank's environment: write the data")
    p.add_argument("out")
    p = sub.add_parser("brainscore", help="Brain-Score's environment: score the data")
    p.add_argument("data")
    p.add_argument("out")
    p = sub.add_parser("compare", help="brainrank's environment: compare and print")
    p.add_argument("data")
    p.add_argument("brainscore")
    args = parser.parse_args(argv)
    if args.step == "export":
        export(args.out)
        return 0
    if args.step == "brainscore":
        run_brainscore(args.data, args.out)
        return 0
    return compare(args.data, args.brainscore)


if __name__ == "__main__":
    sys.exit(main())
