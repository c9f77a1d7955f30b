"""``rsa``: representational similarity analysis.

Per layer, the exact correlation-distance RDM of the full activations is compared with the
brain RDM of each (subject, region): the RDM of the trial-averaged responses, or, for
datasets that publish RDMs only, the given RDMs (averaged over sessions of the same subject
and region). The comparison is the Pearson r of the upper triangles by default
(``comparison="spearman"`` or ``"kendall_tau_a"`` selectable). "RSA Max" is the best layer.

Device: with the run setting ``device`` (or ``backend="torch"``; see ``_encoding``, not part
of the configuration hash) the Pearson comparisons run with torch on that device, in
float64 (MPS: on the CPU); Spearman and Kendall comparisons run on the host.
"""

from __future__ import annotations

import logging

import numpy as np

from brainrank.core.rsa import COMPARISONS, compare, rdm, upper_triangle
from brainrank.plugin import (
    Dataset,
    FeatureRequest,
    FeatureSet,
    InputError,
    Metric,
    MetricMetadata,
    MetricSpec,
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


class RSA(OnDevice, Metric):
    identifier = "rsa"
    headline = "heldout"  # the layer chosen on one half of the stimuli, scored on the other
    version = "2"
    needs = "rdms"

    def __init__(self, comparison: str = "pearson"):
        if comparison not in COMPARISONS:
            raise InputError(f"comparison must be one of {COMPARISONS}, got {comparison!r}.")
        super().__init__(comparison=comparison, distance="correlation")

    def feature_request(self, dataset: Dataset) -> FeatureRequest:
        return FeatureRequest(rdm=True)

    def brain_rdms(
        self, dataset: Dataset
    ) -> tuple[list[str], list[tuple[str, str]], np.ndarray, list[int]]:
        """``(stimulus_ids, [(subject, region)], rdms (g, n, n), n_neuroids)``."""
        responses = dataset.responses()
        if responses is not None:
            averaged = average_repetitions(responses)
            ids = [str(s) for s in averaged["stimulus_id"].values]
            values = np.asarray(averaged.values)
            keys, stack, sizes = [], [], []
            for key, index in neuroid_groups(averaged):
                keys.append(key)
                stack.append(rdm(values[:, index], "correlation", dtype="float64"))
                sizes.append(int(index.size))
            return ids, keys, np.stack(stack), sizes
        rdms = dataset.rdms()
        groups: dict[tuple[str, str], list[int]] = {}
        for i, desc in enumerate(rdms.descriptors):
            groups.setdefault((str(desc["subject"]), str(desc["region"])), []).append(i)
        stack = np.stack([rdms.dissimilarities[idx].mean(0) for idx in groups.values()])
        return list(rdms.stimulus_ids), list(groups), stack, [0] * len(groups)

    def score(self, features: FeatureSet, dataset: Dataset) -> list[Score]:
        ids, keys, brain, sizes = self.brain_rdms(dataset)
        unscorable = _unscorable_groups(brain, keys, dataset.identifier)
        pearson = self.parameters["comparison"] == "pearson"
        ceilings = dataset.ceiling_with_interval("rsa") if pearson else {}
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
            if layer.rdm is None:
                raise InputError(f"features of layer {layer.name!r} have no RDM.")
            model_rdm = layer.rdm[np.ix_(rows, rows)]
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
                            extra={"reason": unscorable[g]},
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
