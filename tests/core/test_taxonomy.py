"""The model taxonomy: fixed vocabularies checked in ModelMetadata, brainrank's old free-text
values mapped, contradictions refused with the allowed values in the message."""

from __future__ import annotations

import dataclasses
import json

import pytest

from brainrank.core import taxonomy
from brainrank.core.errors import InputError
from brainrank.core.specs import ModelMetadata


def meta(**fields) -> ModelMetadata:
    return ModelMetadata(source="lab", architecture="net", **fields)


def test_values_are_normalised_and_the_cluster_derived():
    m = meta(family="Hybrid", task="Language-Image", training_method="CLIP",
             training_data="laion-2b", imagenet_top1="81.5")  # fmt: skip
    assert (m.family, m.task, m.training_method, m.training_data) == (
        "hybrid", "language-image", "clip", "LAION-2B")  # fmt: skip
    assert m.imagenet_top1 == 81.5 and m.task_cluster is None
    t = meta(task="taskonomy:Jigsaw", training_method="taskonomy", training_data="Taskonomy")
    assert t.task == "taskonomy:jigsaw" and t.task_cluster == "geometric"
    # the metadata survives a round trip through JSON (the feature cache stores it so)
    assert ModelMetadata(**json.loads(json.dumps(t.to_dict()))) == t
    assert dataclasses.replace(t, n_params=5) == dataclasses.replace(t, n_params=5)


def test_brainrank_old_free_text_values_are_mapped():
    old = meta(task="object classification", training_data="ImageNet-1k (a1_in1k)")
    assert (old.task, old.training_data) == ("classification", "ImageNet-1k")
    clip = meta(task="image-text contrastive (CLIP)", training_data="WIT-400M (OpenAI CLIP)")
    assert (clip.task, clip.training_data) == ("language-image", "WIT-400M")
    tasko = meta(task="normal", training_data="Taskonomy (indoor scenes)")
    assert (tasko.task, tasko.task_cluster) == ("taskonomy:normal", "3D")
    ft = meta(training_data="ImageNet-21k, fine-tuned on ImageNet-1k")
    assert ft.training_data == "ImageNet-21k"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"family": "cnn"}, r"'cnn' is not one of 'convnet', 'transformer', 'mlp-mixer', 'hybrid'"),
        ({"task": "edge2d"}, r"'classification', 'contrastive self-supervision'.*taskonomy:<task>"),
        ({"task": "taskonomy:edges"}, r"'edges' is not a Taskonomy task; .*'edge_texture'"),
        ({"training_method": "magic"}, r"'supervised', 'distillation'"),
        ({"training_data": "my photos"}, r"'ImageNet-1k', 'ImageNet-12k'.*'other'"),
        ({"trained": False, "task": "classification"}, r"untrained model .*'none'"),
        ({"trained": True, "training_method": "none"}, r"trained model .*'unknown'"),
        ({"task": "taskonomy:normal", "task_cluster": "2D"}, r"does not match .*'3D'"),
        ({"imagenet_top1": 0.76}, None),  # a fraction is a valid (if odd) percentage
        ({"imagenet_top1": 176.0}, r"percent \(0-100\)"),
        ({"n_params": -3}, r"non-negative integer"),
    ],
)
def test_contradictions_and_unknown_values_are_refused(fields, message):
    if message is None:
        meta(**fields)
        return
    with pytest.raises(InputError, match=message):
        meta(**fields)


def test_untrained_models_and_baselines():
    random = meta(trained=False)
    assert (random.task, random.training_method, random.training_data) == ("none",) * 3
    assert not random.baseline
    baseline = meta(trained=False, training_method="handcrafted")
    assert baseline.baseline and baseline.task == "none"
    unknown = meta()  # a trained model that says nothing: allowed, not invented
    assert unknown.task is None and unknown.training_method is None


def test_both_papers_put_jigsaw_in_the_geometric_cluster():
    assert taxonomy.TASKONOMY_TASKS["jigsaw"] == "geometric"
    clusters = taxonomy.TASKONOMY_TASKS
    assert len(clusters) == 25 and set(clusters.values()) == set(taxonomy.TASKONOMY_CLUSTERS)
    assert [t for t, c in clusters.items() if c == "semantic"] == [
        "class_object", "class_scene", "segment_semantic"]  # fmt: skip


def test_vocabularies_are_documented():
    vocab = taxonomy.vocabularies()
    for name in ("task", "training_method", "training_data"):
        assert all(isinstance(text, str) and text for text in vocab[name].values()), name
    assert "hybrid" in vocab["family"] and "none" in vocab["task"]
