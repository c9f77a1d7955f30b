"""``rsa``: representational similarity analysis.

Per layer, the exact RDM of the full activations is compared with the brain RDM of each
(subject, region): the RDM of the trial-averaged responses, or, for datasets that publish
RDMs only, the given RDMs (averaged over sessions of the same subject and region). The
comparison is the Pearson r of the upper triangles by default (``comparison="spearman"`` or
``"kendall_tau_a"`` selectable). "RSA Max" is the best layer.

**Distance** (``distance``), recorded with every score (``extra["rdm"]``: the brain RDM's and
the model RDM's dissimilarity):

- ``"correlation"`` (default): 1 - Pearson r, for brain and model RDMs (the model's from the
  exact RDM extraction computes);
- ``"euclidean"``: rsatoolbox's, the squared Euclidean distance divided by the number of
  channels (its ``dissimilarity_measure`` "squared euclidean"), for brain and model RDMs (the
  model's from the exact column-centred Gram matrix of every layer, which the extraction
  accumulates in the same passes as the correlation RDM: no extra forward pass, the same
  accumulation; the cache holds one more n x n array per layer);
- ``"crossnobis"``: the brain RDM is rsatoolbox's cross-validated squared Mahalanobis
  distance over the repetitions (``noise``: ``"identity"``, rsatoolbox's default, or
  ``"diagonal"``, each channel divided by its residual variance), which needs trial-level
  responses with every stimulus repeated (a dataset without repetitions is refused up
  front); a model has no repetitions, so its RDM is the squared Euclidean distance per
  channel (the noise-free expectation of a crossnobis estimate with identity noise).

A dataset that publishes RDMs says what they are (``RDMSet.distance``); one of the distances
above is compared with a model RDM of that distance only (asking for another is refused,
naming the one to ask for); any other (behavioural judgements) with the ``distance`` the
metric is given.

**Noise-ceiling bounds** (rsatoolbox's, Nili et al. 2014; :mod:`brainrank.core.noise_ceiling`):
where a region has the RDMs of at least 2 subjects, every row of a subject carries
``extra["noise_ceiling"]``, ``{"lower", "upper", "subjects"}``: the comparison of that
subject's RDM with the pooled RDM of the other subjects (lower) and of all of them (upper),
computed on the brain RDMs the metric compares with (its distance, its comparison); their
mean over a region's subjects is rsatoolbox's ``boot_noise_ceiling`` on those RDMs (tested),
the band a subject-averaged score is read against. Where the dataset's own RSA ceiling
applies (Pearson r of correlation-distance RDMs), the rows' ``ceiling`` fields are that
ceiling with its interval, as before; for other distances or comparisons, for which no
dataset ceiling exists, they are the bounds: ``ceiling`` and ``ceiling_low`` the lower bound
(the conservative value a model must reach), ``ceiling_high`` the upper bound, so the
ranking's floor applies to the lower bound.

Device: with the run setting ``device`` (or ``backend="torch"``; see ``_encoding``, not part
of the configuration hash) the Pearson comparisons run with torch on that device, in
float64 (MPS: on the CPU); Spearman and Kendall comparisons run on the host.
"""

from __future__ import annotations

import logging

import numpy as np

from brainrank.core.noise_ceiling import subject_bounds
from brainrank.core.rsa import (
    COMPARISONS,
    CROSSNOBIS_NOISE,
    RSA_DISTANCES,
    compare,
    crossnobis,
    rdm,
    squared_euclidean,
    squared_euclidean_from_gram,
    upper_triangle,
)
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
    NotApplicableError,
    Score,
    average_repetitions,
    ceiling_fields,
    heldout_layer_scores,
    hookimpl,
    neuroid_groups,
    split_halves,
)
from brainrank.plugins.metrics._encoding import SPLIT_SEED, OnDevice

log = logging.getLogger(__name__)

DESCRIPTION = "correlation-distance RDMs compared by the Pearson r of their upper triangles"
#: fewer stimuli than this and a score carries a warning: an RDM comparison over n stimuli
#: rests on n (n - 1) / 2 pairs (45 for 10), and its sampling sd is ~1 / sqrt(pairs) at best
FEW_STIMULI = 10


#: what each distance's RDMs are, as recorded with every score (rsatoolbox's names)
RDM_NAMES = {
    "correlation": "correlation (1 - Pearson r)",
    "euclidean": "squared euclidean per channel",
    "crossnobis": "crossnobis per channel",
}


class RSA(OnDevice, Metric):
    identifier = "rsa"
    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other
    # 2: NaN rows for constant regions; 3: noise-ceiling bounds on every row, other distances
    version = "3"
    needs = "rdms"

    def __init__(
        self, comparison: str = "pearson", distance: str = "correlation", noise: str | None = None
    ):
        if comparison not in COMPARISONS:
            raise InputError(f"comparison must be one of {COMPARISONS}, got {comparison!r}.")
        if distance not in RSA_DISTANCES:
            raise InputError(f"distance must be one of {RSA_DISTANCES}, got {distance!r}.")
        parameters: dict = {"comparison": comparison, "distance": distance}
        if distance == "crossnobis":
            noise = noise or "identity"
            if noise not in CROSSNOBIS_NOISE:
                raise InputError(f"noise must be one of {CROSSNOBIS_NOISE}, got {noise!r}.")
            parameters["noise"] = noise
        elif noise is not None:
            raise InputError(
                f"noise is the noise precision of a crossnobis RDM; distance={distance!r} "
                "takes none."
            )
        super().__init__(**parameters)

    @property
    def distance(self) -> str:
        return self.parameters["distance"]

    def check_applicable(self, dataset: Dataset) -> None:
        super().check_applicable(dataset)
        responses = dataset.responses()
        if responses is None:
            published = dataset.rdms().distance
            if published in RSA_DISTANCES and published != self.distance:
                raise NotApplicableError(
                    f"dataset {dataset.identifier!r} publishes {published} RDMs; metric 'rsa' "
                    f"with distance {self.distance!r} would compare them with another kind of "
                    f"model RDM. Use --param rsa.distance={published}."
                )
            if self.distance == "crossnobis" and published != "crossnobis":
                raise NotApplicableError(
                    f"dataset {dataset.identifier!r} publishes RDMs, not the repeated trials a "
                    "crossnobis RDM is computed from."
                )
        elif self.distance == "crossnobis":
            from brainrank.core.stats import trials_array

            try:
                trials, _ = trials_array(responses)
            except InputError as exc:
                raise NotApplicableError(
                    f"a crossnobis RDM needs every stimulus repeated equally often; dataset "
                    f"{dataset.identifier!r}: {exc}"
                ) from None
            if trials.shape[0] < 2:
                raise NotApplicableError(
                    f"a crossnobis RDM is cross-validated over repetitions; dataset "
                    f"{dataset.identifier!r} has {trials.shape[0]} per stimulus (averaged "
                    "responses). Use distance='correlation' or 'euclidean'."
                )

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        if self.distance == "correlation":
            return FeatureRequest(rdm=True)
        return FeatureRequest(gram=True)  # squared Euclidean RDMs from the exact Gram

    def model_rdm(self, layer) -> np.ndarray:
        """The layer's RDM in the metric's model distance (see the module docstring)."""
        if self.distance == "correlation":
            if layer.rdm is None:
                raise InputError(f"features of layer {layer.name!r} have no RDM.")
            return layer.rdm
        if layer.gram is None:
            raise InputError(f"features of layer {layer.name!r} have no Gram matrix.")
        return squared_euclidean_from_gram(layer.gram, layer.n_features)

    def rdm_names(self, dataset: Dataset) -> dict[str, str]:
        """What the brain and the model RDMs are (recorded with every score)."""
        model = RDM_NAMES["correlation" if self.distance == "correlation" else "euclidean"]
        if dataset.responses() is None:
            published = dataset.rdms().distance
            brain = RDM_NAMES.get(published, published) + " (published)"
        elif self.distance == "crossnobis":
            brain = RDM_NAMES["crossnobis"] + f", noise {self.parameters['noise']}"
        else:
            brain = RDM_NAMES[self.distance]
        return {"brain": brain, "model": model}

    def brain_rdms(
        self, dataset: Dataset
    ) -> tuple[list[str], list[tuple[str, str]], np.ndarray, list[int]]:
        """``(stimulus_ids, [(subject, region)], rdms (g, n, n), n_neuroids)``."""
        responses = dataset.responses()
        if responses is not None and self.distance == "crossnobis":
            from brainrank.core.stats import trials_array

            trials, ids = trials_array(responses)
            keys, stack, sizes = [], [], []
            for key, index in neuroid_groups(responses):
                keys.append(key)
                stack.append(crossnobis(trials[:, :, index], self.parameters["noise"]))
                sizes.append(int(index.size))
            return [str(s) for s in ids], keys, np.stack(stack), sizes
        if responses is not None:
            averaged = average_repetitions(responses)
            ids = [str(s) for s in averaged["stimulus_id"].values]
            values = np.asarray(averaged.values)
            keys, stack, sizes = [], [], []
            for key, index in neuroid_groups(averaged):
                keys.append(key)
                if self.distance == "euclidean":
                    stack.append(squared_euclidean(values[:, index]))
                else:
                    stack.append(rdm(values[:, index], "correlation", dtype="float64"))
                sizes.append(int(index.size))
            return ids, keys, np.stack(stack), sizes
        rdms = dataset.rdms()
        groups: dict[tuple[str, str], list[int]] = {}
        for i, desc in enumerate(rdms.descriptors):
            groups.setdefault((str(desc["subject"]), str(desc["region"])), []).append(i)
        stack = np.stack([rdms.dissimilarities[idx].mean(0) for idx in groups.values()])
        return list(rdms.stimulus_ids), list(groups), stack, [0] * len(groups)

    def noise_ceilings(
        self, keys: list[tuple[str, str]], brain: np.ndarray
    ) -> dict[tuple[str, str], dict[str, float]]:
        """Per (subject, region) of a region with at least 2 subjects' RDMs, its lower and
        upper noise-ceiling terms (see the module docstring)."""
        by_region: dict[str, list[int]] = {}
        for g, (_, region) in enumerate(keys):
            by_region.setdefault(region, []).append(g)
        out = {}
        for members in by_region.values():
            stack = brain[members]
            if len(members) < 2 or not np.all(np.isfinite(stack)):
                continue
            lower, upper = subject_bounds(stack, self.parameters["comparison"])
            for g, low, high in zip(members, lower, upper, strict=True):
                out[keys[g]] = {"lower": float(low), "upper": float(high),
                                "subjects": len(members)}  # fmt: skip
        return out

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        ids, keys, brain, sizes = self.brain_rdms(dataset)
        unscorable = _unscorable_groups(brain, keys, dataset.identifier)
        bounds = self.noise_ceilings(keys, brain)
        own = self.parameters["comparison"] == "pearson" and self.distance == "correlation"
        ceilings = dataset.ceiling_with_interval("rsa") if own else {}
        for key, bound in bounds.items():  # no ceiling of the dataset's: the subjects' bounds
            if key not in ceilings:
                ceilings[key] = (bound["lower"], bound["lower"], bound["upper"])
        described = self.rdm_names(dataset)
        rows = features.rows_for(ids)
        half_a, half_b = split_halves(len(ids), SPLIT_SEED)
        scores: list[Score] = []
        warning = None
        if len(ids) < FEW_STIMULI:
            pairs = len(ids) * (len(ids) - 1) // 2
            warning = (
                f"an RDM comparison over {len(ids)} stimuli ({pairs} pairs; each held-out half "
                f"has {len(half_a)} or {len(half_b)}): its sampling error is of the order of "
                f"the score itself; use at least {FEW_STIMULI} stimuli"
            )
            log.warning("rsa on %s: %s", dataset.identifier, warning)
        for layer in features:
            model_rdm = self.model_rdm(layer)[np.ix_(rows, rows)]
            values = self.compare_rdms(model_rdm, brain, np.arange(len(ids)))
            on_a = self.compare_rdms(model_rdm, brain, half_a)
            on_b = self.compare_rdms(model_rdm, brain, half_b)
            for g, (subject, region) in enumerate(keys):
                if g in unscorable:  # recorded as NaN with its reason, never a number
                    scores.append(
                        Score(
                            subject=subject,
                            region=region,
                            layer=layer.name,
                            value=float("nan"),
                            n_neuroids=sizes[g],
                            layer_index=layer.index,
                            relative_depth=layer.relative_depth,
                            halves=(float("nan"), float("nan")),
                            extra={"reason": unscorable[g], "rdm": described},
                        )
                    )
                    continue
                scores.append(
                    Score(
                        subject=subject,
                        region=region,
                        layer=layer.name,
                        value=float(values[g]),
                        n_neuroids=sizes[g],
                        layer_index=layer.index,
                        relative_depth=layer.relative_depth,
                        **ceiling_fields(ceilings, (subject, region)),
                        halves=(float(on_a[g]), float(on_b[g])),
                        extra={
                            "n_stimuli": int((~np.isnan(model_rdm).all(axis=1)).sum()),
                            "rdm": described,
                            **(
                                {"noise_ceiling": bounds[subject, region]}
                                if (subject, region) in bounds
                                else {}
                            ),
                            **({"warning": warning} if warning else {}),
                        },
                    )
                )
        return scores + heldout_layer_scores(scores)

    def compare_rdms(
        self, model_rdm: np.ndarray, brain: np.ndarray, subset: np.ndarray
    ) -> np.ndarray:
        """The model RDM against every brain RDM, on the stimuli ``subset``.

        A stimulus whose activation pattern is constant has no correlation distance (its row
        is NaN): it is left out; NaN when fewer than 3 stimuli remain.
        """
        sub = model_rdm[np.ix_(subset, subset)]
        keep = ~np.isnan(sub).all(axis=1)
        kept = sub[np.ix_(keep, keep)]
        if keep.sum() < 3 or np.isnan(kept).any():
            return np.full(brain.shape[0], np.nan)
        chosen = subset[keep]
        target = brain[:, chosen][:, :, chosen]
        out = np.full(brain.shape[0], np.nan)
        # a brain RDM with undefined dissimilarities (a constant region) is left NaN; the
        # other groups are scored (see _unscorable_groups for the recorded reason)
        good = np.isfinite(target).reshape(len(target), -1).all(axis=1)
        if not good.any():
            return out
        if (
            self.parameters["comparison"] == "pearson"
            and self.ridge_options()["backend"] == "torch"
        ):
            out[good] = _pearson_on_device(self.array_backend(), kept, target[good])
        else:
            values = compare(kept[None], target[good], self.parameters["comparison"])
            out[good] = np.atleast_2d(values)[0]
        return out


def _pearson_on_device(be, model_rdm: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Pearson r of the upper triangle of ``model_rdm`` with each of ``brain`` (g, n, n),
    as :func:`brainrank.core.rsa.compare`, on the device of the torch backend ``be``
    (float64; the CPU on MPS, which has none)."""
    if getattr(be.device, "type", "cpu") == "mps":
        return np.atleast_2d(compare(model_rdm[None], brain, "pearson"))[0]
    a = be.asarray(upper_triangle(model_rdm)[0], "float64")
    b = be.asarray(upper_triangle(brain), "float64")
    a = a - a.mean()
    b = b - b.mean(dim=1, keepdim=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = be.to_numpy(b @ a) / (be.to_numpy(b.norm(dim=1)) * float(a.norm()))
    return r


def _unscorable_groups(
    brain: np.ndarray, keys: list[tuple[str, str]], dataset: str
) -> dict[int, str]:
    """``{group: reason}`` for brain RDMs with NaN or infinite dissimilarities (responses
    constant across the region's neuroids for some stimuli, or missing values)."""
    out = {}
    for g, (subject, region) in enumerate(keys):
        bad_rows = ~np.isfinite(brain[g]).all(axis=1)
        if bad_rows.any():
            out[g] = (
                f"the brain RDM of subject {str(subject)!r}, region {str(region)!r} of {dataset} has "
                f"undefined dissimilarities for {int(bad_rows.sum())} of {len(bad_rows)} "
                "stimuli (their responses are constant across the region's neuroids, or "
                "missing); this region is not scored."
            )
            log.warning("rsa: %s", out[g])
    return out


@hookimpl
def brainrank_metrics() -> list[MetricSpec]:
    return [MetricSpec("rsa", RSA, MetricMetadata(DESCRIPTION, needs="rdms"))]
