"""The taxonomy of every listed model, and the facts behind it: timm's pretrained tags,
torchvision's published accuracies. Nothing is built: what a built model would record is
read from the libraries' own configurations and compared with the listing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core import taxonomy
from brainrank.core.registry import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_every_listed_model_has_a_complete_taxonomy(registry):
    models = registry.identifiers("model")
    assert len(models) > 300
    for identifier in models:
        meta = registry.get("model", identifier).metadata
        assert meta.family in taxonomy.FAMILIES, identifier
        if not meta.trained:
            assert (meta.task, meta.training_data) == ("none", "none"), identifier
            assert meta.training_method in ("none", "handcrafted"), identifier
            assert (meta.training_method == "handcrafted") == identifier.startswith("baseline/")
            continue
        # a listed (not a user's) trained model states all of it
        for field in ("task", "training_method", "training_data"):
            value = getattr(meta, field)
            assert value not in (None, "unknown", "none"), (identifier, field, value)
        assert meta.task in taxonomy.TASKS or meta.task_cluster, identifier
        assert meta.training_method in taxonomy.TRAINING_METHODS, identifier
        assert meta.training_data in taxonomy.TRAINING_DATA, identifier
        if meta.imagenet_top1 is not None:
            assert 0 < meta.imagenet_top1 < 100 and meta.top1_source, identifier
        if meta.source not in ("timm", "openclip"):
            assert meta.input_size, identifier


def test_timm_listing_is_what_timm_loads(registry):
    """The listed metadata of each curated timm model comes from the tag timm's
    pretrained=True loads (as the built model records it from its pretrained_cfg)."""
    import timm

    from brainrank.plugins.models import timm as tm

    for name, (_family, tag, top1) in tm.CURATED.items():
        cfg = timm.models.get_pretrained_cfg(name)
        assert cfg.tag == tag, name
        listed = registry.get("model", f"timm/{name}").metadata
        built = tm._metadata(name, True, cfg.tag)  # what build() records from pretrained_cfg
        assert listed == built, name
        assert listed.imagenet_top1 == top1 and listed.extra["pretrained_tag"] == tag
    # the 12 defaults trained on more than ImageNet-1k, which the listing used to hide
    expected = {
        "vit_tiny_patch16_224": "ImageNet-21k", "vit_small_patch16_224": "ImageNet-21k",
        "vit_base_patch16_224": "ImageNet-21k", "vit_base_patch32_224": "ImageNet-21k",
        "vit_large_patch16_224": "ImageNet-21k", "mixer_b16_224": "ImageNet-21k",
        "mixer_l16_224": "ImageNet-21k", "swin_small_patch4_window7_224": "ImageNet-22k",
        "swin_base_patch4_window7_224": "ImageNet-22k", "beit_base_patch16_224": "ImageNet-22k",
        "convnext_tiny": "ImageNet-12k", "tf_efficientnet_b7": "JFT-300M",
    }  # fmt: skip
    for name, data in expected.items():
        meta = registry.get("model", f"timm/{name}").metadata
        assert meta.training_data == data, name
        assert meta.task == "classification", name
    assert registry.get("model", "timm/beit_base_patch16_224").metadata.training_method == "beit"
    effnet = registry.get("model", "timm/tf_efficientnet_b7").metadata
    assert effnet.training_method == "semi-supervised"
    others = [n for n in tm.CURATED if n not in expected]
    assert all(registry.get("model", f"timm/{n}").metadata.training_data == "ImageNet-1k"
               for n in others)  # fmt: skip


@pytest.mark.parametrize(
    ("tag", "name", "task", "method", "data", "fine_tuned"),
    [
        ("a1_in1k", "resnet50", "classification", "supervised", "ImageNet-1k", None),
        ("augreg_in21k_ft_in1k", "vit_base_patch16_224", "classification", "supervised",
         "ImageNet-21k", "ImageNet-1k"),
        ("augreg_in21k", "vit_base_patch16_224", "classification", "supervised",
         "ImageNet-21k", None),
        ("in12k_ft_in1k", "convnext_tiny", "classification", "supervised", "ImageNet-12k",
         "ImageNet-1k"),
        ("ns_jft_in1k", "tf_efficientnet_b7", "classification", "semi-supervised", "JFT-300M",
         None),
        ("fb_ssl_yfcc100m_ft_in1k", "resnet50", "classification", "semi-supervised",
         "YFCC-100M", "ImageNet-1k"),
        ("fb_swsl_ig1b_ft_in1k", "resnet50", "classification", "weakly-supervised",
         "Instagram-1B", "ImageNet-1k"),
        ("dino", "vit_small_patch16_224", "non-contrastive self-supervision", "dino",
         "ImageNet-1k", None),
        ("mae", "vit_base_patch16_224", "masked image modelling", "mae", "ImageNet-1k", None),
        ("lvd142m", "vit_small_patch14_dinov2", "non-contrastive self-supervision", "dino",
         "other", None),
        ("laion2b", "vit_base_patch16_clip_224", "language-image", "clip", "LAION-2B", None),
        ("openai", "vit_base_patch16_clip_224", "language-image", "clip", "WIT-400M", None),
        ("laion2b_ft_in12k_in1k", "vit_base_patch16_clip_224", "classification", "clip",
         "LAION-2B", "ImageNet-1k"),
        ("mim_in22k", "eva02_base_patch14_224", "masked image modelling", "eva",
         "ImageNet-22k", None),
        ("in22k_ft_in22k_in1k", "beit_base_patch16_224", "classification", "beit",
         "ImageNet-22k", "ImageNet-1k"),
        ("fb_dist_in1k", "cait_xxs24_224", "classification", "distillation", "ImageNet-1k",
         None),
        ("fb_in1k", "deit_base_distilled_patch16_224", "classification", "distillation",
         "ImageNet-1k", None),
    ],
)  # fmt: skip
def test_timm_tags_name_task_method_and_data(tag, name, task, method, data, fine_tuned):
    import timm

    from brainrank.plugins.models.timm import tag_taxonomy

    assert f"{name}.{tag}" in timm.list_pretrained(f"{name}.*"), "not a timm tag"
    assert tag_taxonomy(tag, name) == {
        "task": task, "training_method": method, "training_data": data,
        "fine_tuned_on": fine_tuned,
    }  # fmt: skip


def test_every_timm_tag_maps_into_the_vocabulary():
    import timm

    from brainrank.plugins.models.timm import tag_taxonomy

    names = timm.list_pretrained()
    assert len(names) > 1000
    unknown = []
    for full in names:
        name, _, tag = full.partition(".")
        facts = tag_taxonomy(tag, name)
        # values the vocabulary accepts (ModelMetadata checks them)
        taxonomy.normalise_task(facts["task"])
        taxonomy.normalise_training_method(facts["training_method"])
        taxonomy.normalise_training_data(facts["training_data"])
        if facts["training_data"] == "unknown":
            unknown.append(full)
            assert facts["training_method"] != "supervised", full  # no guess from nothing
            assert facts["task"] in ("unknown", "classification"), full
    assert len(unknown) < 0.1 * len(names), unknown[:20]  # tags that name no data: rare


def test_hybrids_are_not_convnets(registry):
    for name in ("visformer_small", "nest_base_jx", "poolformer_s12", "efficientformer_l1",
                 "mobilevit_s", "levit_128", "coat_mini", "convit_tiny"):  # fmt: skip
        assert registry.get("model", f"timm/{name}:random").metadata.family == "hybrid", name
    for name, family in (("resnet50", "convnet"), ("deit_small_patch16_224", "transformer"),
                         ("resmlp_12_224", "mlp-mixer")):  # fmt: skip
        assert registry.get("model", f"timm/{name}:random").metadata.family == family


def test_torchvision_accuracies_are_torchvision_s():
    import torchvision.models as tvm

    from brainrank.plugins.models import torchvision as tv

    assert set(tv.TOP1) == set(tv.ARCHITECTURES)
    for name, top1 in tv.TOP1.items():
        weights = tvm.get_model_weights(name).IMAGENET1K_V1
        assert weights.meta["_metrics"]["ImageNet-1K"]["acc@1"] == top1, name


def test_models_command_filters_and_json(registry):
    runner = CliRunner()
    out = runner.invoke(main, ["models", "--random", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert rows and all(not r["trained"] for r in rows)
    assert not any(r["identifier"].startswith("baseline/") for r in rows)  # baselines apart
    baselines = json.loads(
        runner.invoke(main, ["models", "--baselines", "--format", "json"]).output
    )
    assert {r["identifier"] for r in baselines} >= {"baseline/gabor", "baseline/pixels"}
    assert all(r["training_method"] == "handcrafted" for r in baselines)
    tasko = json.loads(runner.invoke(main, ["models", "--task", "taskonomy:*", "--format",
                                            "json"]).output)  # fmt: skip
    assert len(tasko) == 25 and {r["task_cluster"] for r in tasko} == {"2D", "3D", "geometric",
                                                                       "semantic"}  # fmt: skip
    ssl = json.loads(runner.invoke(main, ["models", "--data", "ImageNet-1k", "--task",
                                          "*self-supervision", "--format", "json"]).output)  # fmt: skip
    assert "torchvision/resnet50@barlowtwins" in {r["identifier"] for r in ssl}
    for field in ("family", "task", "task_cluster", "training_method", "training_data",
                  "trained", "n_params", "input_size", "imagenet_top1", "top1_source"):  # fmt: skip
        assert field in ssl[0], field
    hybrid = runner.invoke(main, ["models", "timm/*", "--family", "hybrid"]).output
    assert "timm/levit_128" in hybrid and "timm/resnet50" not in hybrid
    vocab = json.loads(runner.invoke(main, ["models", "--vocabulary"]).output)
    assert "masked image modelling" in vocab["task"]
