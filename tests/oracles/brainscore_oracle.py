"""Brain-Score's own metric implementations as an oracle for brainrank (run by hand).

brainscore-vision 2.4.2 pins numpy < 2 and scikit-learn < 1.6, so it cannot share
brainrank's environment: this one file runs in both, in three steps that exchange ``.npz``
files (see ``README.md`` next to it for the commands and the install recipe):

1. ``export`` (brainrank's environment): the ``simulated`` dataset's trial-averaged
   responses of every (subject, region) and the full activations of a few model layers on
   its 200 stimuli;
2. ``brainscore`` (Brain-Score's environment, no brainrank import): builds
   ``NeuroidAssembly`` objects from them and scores every (layer, subject, region) with
   ``brainscore_vision.load_metric("ridge" | "pls" | "rdm" | "cka")``, recording the
   cross-validation splits and the per-split, per-neuroid correlations it used;
3. ``compare`` (brainrank's environment, no brainscore import): computes brainrank's
   equivalents of the quantities both compute and prints the agreement:

   - ``ridge`` (Brain-Score: ``Ridge(alpha=1)`` with intercept on the raw features, fitted
     on 90% of the stimuli and scored on 10%, 10 stratified splits, Pearson r per neuroid,
     median over neuroids, mean over splits): brainrank's ridge kernel
     (``brainrank.core.ridge.RidgeCV`` with the single alpha 1, intercept) fitted and
     scored on the *same* splits, with the same reductions;
   - ``rdm`` (Brain-Score: RDM = 1 - Pearson r between stimulus patterns, Spearman rho of
     the upper triangles): brainrank's ``rsa`` metric with ``comparison="spearman"``, end
     to end (features' exact RDM, the brain RDM of the trial-averaged responses);
   - ``pls`` and ``cka``: brainrank has no PLS regression and no CKA; Brain-Score's values
     are printed for reference only.

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
BRAINSCORE_METRICS = ("ridge", "pls", "rdm", "cka")
#: Brain-Score's PLS (scikit-learn's, power iterations on the full feature matrix, 25
#: components x 10 splits) takes hours on the 43,264 / 150,528 features of the larger
#: layers on 2 cores; it is run on the layers up to this size only (reference values).
PLS_MAX_FEATURES = 5000


# --------------------------------------------------------------------------- 1. export


def export(out: str) -> None:
    import brainrank
    from brainrank.core.extraction import layer_activations
    from brainrank.core.responses import average_repetitions, neuroid_groups

    dataset = brainrank.load_dataset("simulated")
    averaged = average_repetitions(dataset.responses())
    ids = [str(s) for s in averaged["stimulus_id"].values]
    images = [dataset.stimuli.image(s) for s in ids]
    kinds = np.asarray(dataset.stimuli.metadata.loc[ids, "kind"], dtype=str)
    arrays: dict[str, np.ndarray] = {
        "stimulus_id": np.asarray(ids),
        "kind": kinds,
        "responses": np.asarray(averaged.values, dtype=np.float64),
        "neuroid_id": averaged["neuroid_id"].values.astype(str),
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


def run_brainscore(data_path: str, out: str) -> None:
    import brainscore_vision
    from brainscore_core.supported_data_standards.brainio.assemblies import NeuroidAssembly

    data, index = _read(data_path)
    ids = data["stimulus_id"].astype(str)
    kinds = data["kind"].astype(str)

    def assembly(values: np.ndarray, neuroid_ids) -> NeuroidAssembly:
        return NeuroidAssembly(
            values,
            coords={
                "stimulus_id": ("presentation", ids),
                "object_name": ("presentation", kinds),  # the stratification of the splits
                "neuroid_id": ("neuroid", np.asarray(neuroid_ids).astype(str)),
                "neuroid_num": ("neuroid", np.arange(values.shape[1])),
            },
            dims=["presentation", "neuroid"],
        )

    results: dict[str, np.ndarray] = {}
    summary = []
    for li, (model_id, layer) in enumerate(index["layers"]):
        X = data[f"layer{li}"]
        source = assembly(X, [f"f{i}" for i in range(X.shape[1])])
        for gi, (subject, region) in enumerate(index["groups"]):
            cols = data[f"group{gi}"]
            target = assembly(data["responses"][:, cols], data["neuroid_id"][cols])
            for name in BRAINSCORE_METRICS:
                if name == "pls" and X.shape[1] > PLS_MAX_FEATURES:
                    results[f"value|{li}:{gi}:{name}"] = np.asarray(float("nan"))
                    continue
                metric = brainscore_vision.load_metric(name)
                record = []
                if hasattr(metric, "apply"):  # the cross-validated regressions: keep splits
                    original = metric.apply

                    def apply(
                        src_train, tgt_train, src_test, tgt_test, _orig=original, _rec=record
                    ):
                        score = _orig(src_train, tgt_train, src_test, tgt_test)
                        _rec.append(
                            (
                                src_train["stimulus_id"].values.astype(str),
                                src_test["stimulus_id"].values.astype(str),
                                np.asarray(score.sortby("neuroid_id").values, dtype=np.float64),
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
                key = f"{li}:{gi}:{name}"
                results[f"value|{key}"] = np.asarray(value)
                for s, (train, test, per) in enumerate(record):
                    results[f"train|{key}|{s}"] = train
                    results[f"test|{key}|{s}"] = test
                    results[f"r|{key}|{s}"] = per
                summary.append((model_id, layer, subject, region, name, value))
                print(
                    f"{model_id:28s} {layer:12s} {subject} {region:6s} {name:6s} {value:+.4f}",
                    flush=True,
                )
    np.savez_compressed(out, **results)
    print(f"wrote {out}")


# --------------------------------------------------------------------------- 3. compare


def compare(data_path: str, bs_path: str) -> int:
    import brainrank
    from brainrank.core.ridge import RidgeCV
    from brainrank.core.rsa import rdm
    from brainrank.core.scores import FeatureSet, LayerFeatures

    data, index = _read(data_path)
    bs = np.load(bs_path, allow_pickle=False)
    ids = list(data["stimulus_id"].astype(str))
    position = {s: i for i, s in enumerate(ids)}
    Y_all = data["responses"]
    dataset = brainrank.load_dataset("simulated")
    rsa = brainrank.load_metric("rsa", comparison="spearman")

    rows = []
    for li, (model_id, layer) in enumerate(index["layers"]):
        X = data[f"layer{li}"]
        features = FeatureSet(
            model_id,
            tuple(ids),
            [LayerFeatures(layer, 0, 0.0, X.shape[1], (X.shape[1],), rdm=rdm(X, dtype="float64"))],
        )
        rsa_rows = {
            (r.subject, r.region): r.value
            for r in rsa.score(features, dataset)
            if r.selection == "layer"
        }
        for gi, (subject, region) in enumerate(index["groups"]):
            cols = data[f"group{gi}"]
            order = np.argsort(data["neuroid_id"][cols])  # Brain-Score sorts by neuroid_id
            Y = Y_all[:, cols][:, order]
            # ridge: the same splits, brainrank's kernel
            key = f"{li}:{gi}:ridge"
            per_split, max_diff, s = [], 0.0, 0
            while f"train|{key}|{s}" in bs:
                train = np.array([position[t] for t in bs[f"train|{key}|{s}"].astype(str)])
                test = np.array([position[t] for t in bs[f"test|{key}|{s}"].astype(str)])
                fitted = RidgeCV([1.0]).fit(X[train], Y[train], return_predictions=False)
                predicted = fitted.predict(X[test])
                r = np.array(
                    [np.corrcoef(predicted[:, j], Y[test, j])[0, 1] for j in range(Y.shape[1])]
                )
                max_diff = max(max_diff, float(np.nanmax(np.abs(r - bs[f"r|{key}|{s}"]))))
                per_split.append(np.nanmedian(r))
                s += 1
            ours = float(np.mean(per_split)) if per_split else float("nan")
            theirs = float(bs[f"value|{key}"])
            rows.append((model_id, layer, subject, region, "ridge", theirs, ours, max_diff, s))
            # rdm: brainrank's rsa metric (spearman) end to end
            key = f"{li}:{gi}:rdm"
            theirs = float(bs[f"value|{key}"])
            ours = rsa_rows.get((subject, region), float("nan"))
            rows.append(
                (model_id, layer, subject, region, "rdm", theirs, ours, abs(theirs - ours), 0)
            )
            for name in ("pls", "cka"):
                value = float(bs[f"value|{li}:{gi}:{name}"])
                rows.append(
                    (model_id, layer, subject, region, name, value, float("nan"), float("nan"), 0)
                )

    print(f"{'model':28s} {'layer':12s} {'subject':7s} {'region':6s} {'metric':6s} "
          f"{'brainscore':>10s} {'brainrank':>10s} {'|diff|':>9s} note")  # fmt: skip
    worst = {"ridge": 0.0, "rdm": 0.0}
    for model_id, layer, subject, region, name, theirs, ours, diff, splits in rows:
        if name == "ridge":
            note = f"{splits} splits; max per-neuroid |diff| {diff:.2e}"
            diff = abs(theirs - ours)
        elif name == "rdm":
            note = "brainrank rsa(comparison='spearman')"
        elif not np.isfinite(theirs):
            note = f"not run (layer above {PLS_MAX_FEATURES} features)"
        else:
            note = "no brainrank equivalent (reference only)"
        if name in worst and np.isfinite(diff):
            worst[name] = max(worst[name], diff)
        print(f"{model_id:28s} {layer:12s} {subject:7s} {region:6s} {name:6s} {theirs:+10.4f} "
              f"{ours:+10.4f} {diff:9.2e} {note}")  # fmt: skip
    print(f"largest |brainscore - brainrank|: ridge {worst['ridge']:.2e}, rdm {worst['rdm']:.2e}")
    return 0 if worst["ridge"] < 1e-4 and worst["rdm"] < 1e-6 else 1


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
