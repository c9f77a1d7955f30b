"""The default suite: what ``brainrank run`` scores when nothing is selected.

A handful of models that need no download (random initialisations and baselines), the
default datasets that are present offline, and every metric (presets, the opt-in metrics of
:data:`OPT_IN_METRICS` and descriptive metrics excluded). On the embedded ``simulated``
dataset it finishes in a few minutes on a laptop CPU.
"""

from __future__ import annotations

from brainrank.core.registry import Registry

DEFAULT_MODELS = (
    "baseline/pixels",
    "baseline/gabor",
    "torchvision/alexnet:random",
    "timm/resnet18:random",
)

#: Used when present (``available`` says so); ``simulated`` always is. The 92-image set is
#: small enough for the default suite once downloaded (``brainrank data download
#: kriegeskorte2008``); the large datasets are scored when asked for by name.
DEFAULT_DATASETS = ("simulated", "kriegeskorte2008")


def default_models(registry: Registry) -> list[str]:
    known = set(registry.identifiers("model"))
    return [m for m in DEFAULT_MODELS if m in known]


def default_datasets(registry: Registry, data_dir=None) -> list[str]:
    specs = registry.specs("dataset")
    chosen = []
    for identifier in DEFAULT_DATASETS:
        spec = specs.get(identifier)
        if spec is not None and spec.available(data_dir=data_dir):
            chosen.append(identifier)
    return chosen


#: Metrics a user asks for by name (``--metrics pls,ridge-cv,cka``): Brain-Score's protocols
#: fit 10 splits (and 20 within-half ones) per layer and region, ridge-cv over 99 penalties,
#: which would multiply the default suite's time; CKA and the behavioural metric are opt-in
#: with them so that the default suite stays the seed papers' four metrics. Variance
#: partitioning scores feature spaces of several models, which the user names (``--spaces``).
OPT_IN_METRICS = ("pls", "ridge-cv", "cka", "error-consistency", "variance-partitioning")


def default_metrics(registry: Registry) -> list[str]:
    """Every metric, in its default configuration, except :data:`OPT_IN_METRICS`: presets
    (``srp-ridge:mouse``...) are variants a user asks for by name, and so are the metrics that
    describe features rather than compare them with the brain (``effective-dimensionality``)."""
    from brainrank.leaderboard.ranking import DESCRIPTIVE_METRICS

    return [
        m
        for m in registry.identifiers("metric")
        if ":" not in m and m not in OPT_IN_METRICS and m not in DESCRIPTIVE_METRICS
    ]
