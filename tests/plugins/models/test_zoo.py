"""The model zoo: what is listed (lazily, with complete metadata), what resolves on demand,
and that every family builds and extracts features on a few tiny images."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import brainrank
from brainrank.core.errors import UnknownIdentifierError, WeightsUnavailableError
from brainrank.core.extraction import ExtractionConfig, extract_features, layer_activations
from brainrank.core.registry import Registry
from brainrank.core.scores import FeatureRequest
from brainrank.core.specs import MODEL_FAMILIES

SEED_TORCHVISION = [
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2", "densenet121",
    "densenet169", "densenet201", "googlenet", "inception_v3", "mnasnet0_5", "mnasnet1_0",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "efficientnet_b0",
]  # fmt: skip
TASKONOMY = [
    "autoencoding", "colorization", "curvature", "denoising", "depth_euclidean",
    "depth_zbuffer", "edge_texture", "edge_occlusion", "keypoints2d", "keypoints3d",
    "inpainting", "jigsaw", "normal", "reshading", "room_layout", "segment_unsup2d",
    "segment_unsup25d", "segment_semantic", "class_object", "class_scene", "vanishing_point",
    "egomotion", "fixated_pose", "nonfixated_pose", "point_matching",
]  # fmt: skip


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_every_family_is_listed_with_complete_metadata(registry):
    models = registry.identifiers("model")
    for name in SEED_TORCHVISION:
        assert f"torchvision/{name}" in models and f"torchvision/{name}:random" in models
    assert {f"taskonomy/{t}" for t in TASKONOMY} | {"taskonomy/random"} <= set(models)
    assert {
        "openclip/rn50:openai", "openclip/rn101:openai", "openclip/vit-b-32:openai",
        "openclip/vit-b-32:laion2b_s34b_b79k", "openclip/vit-b-16:openai",
        "openclip/vit-l-14:openai", "openclip/rn50:random", "openclip/vit-l-14:random",
    } <= set(models)  # fmt: skip
    for depth in (20, 32, 44, 56):
        assert {f"cifar/resnet{depth}", f"cifar/resnet{depth}:random"} <= set(models)
    assert {"baseline/pixels", "baseline/gabor", "baseline/gist", "baseline/rff"} <= set(models)
    timm_families = {registry.get("model", m).metadata.family for m in models if m[:5] == "timm/"}
    assert timm_families == {"convnet", "transformer", "mlp-mixer", "hybrid"}
    for name in ("inception_resnet_v2", "nf_resnet50", "efficientnet_b0", "deit_small_patch16_224",
                 "swin_tiny_patch4_window7_224", "mixer_b16_224", "resmlp_12_224", "gmlp_s16_224"):  # fmt: skip
        assert f"timm/{name}" in models

    for identifier in models:
        meta = registry.get("model", identifier).metadata
        assert meta.family in MODEL_FAMILIES
        assert meta.source and meta.architecture and meta.description
        if identifier.endswith(":random") or identifier == "taskonomy/random":
            assert not meta.trained, identifier
        if meta.trained:
            assert meta.task and meta.training_data, identifier
        if meta.source in ("taskonomy", "cifar", "torchvision"):
            assert meta.input_size, identifier


def test_taskonomy_clusters_and_preprocessing(registry):
    clusters = {t: registry.get("model", f"taskonomy/{t}").metadata.task_cluster for t in TASKONOMY}
    assert set(clusters.values()) == {"2D", "3D", "geometric", "semantic"}
    assert clusters["edge_texture"] == "2D" and clusters["edge_occlusion"] == "3D"
    assert clusters["room_layout"] == "geometric" and clusters["class_scene"] == "semantic"
    # both seed papers that group the tasks put jigsaw in the geometric cluster
    assert clusters["jigsaw"] == "geometric" and clusters["denoising"] == "2D"
    from brainrank.plugins.models.taskonomy import preprocess

    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[:, 30:] = 255
    x = preprocess()(image)
    assert tuple(x.shape) == (3, 256, 256)
    assert float(x.min()) == pytest.approx(-1.0) and float(x.max()) == pytest.approx(1.0)


def test_listing_imports_no_model_library():
    code = (
        "import sys, brainrank\n"
        "brainrank.list_models()\n"
        "mods = ('torch', 'torchvision', 'timm', 'open_clip', 'visualpriors', 'huggingface_hub')\n"
        "print(sorted(m for m in mods if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_curated_names_exist_in_their_libraries():
    import open_clip
    import timm
    import torchvision.models as tvm

    from brainrank.plugins.models import openclip as oc
    from brainrank.plugins.models import timm as tm
    from brainrank.plugins.models import torchvision as tv

    for name in tv.ARCHITECTURES:
        weights = tvm.get_model_weights(name).IMAGENET1K_V1
        assert weights.transforms().crop_size[0] == tv._metadata(name, True).input_size
    for name in tm.CURATED:
        assert timm.is_model(name), name
        assert timm.models.get_pretrained_cfg(name).hf_hub_id, f"{name} has no weights"
    for arch, tags in oc.CURATED.values():
        assert set(tags) <= set(open_clip.list_pretrained_tags_by_model(arch)), arch


def test_open_families_resolve_on_demand(registry):
    assert registry.get("model", "timm/resnet50.tv_in1k").metadata.training_data == "ImageNet-1k"
    spec = registry.get("model", "timm/resnet10t:random")
    assert spec.metadata.trained is False and spec.metadata.family == "convnet"
    assert registry.get("model", "timm/mixer_s32_224:random").metadata.family == "mlp-mixer"
    spec = registry.get("model", "openclip/vit-b-32:laion400m_e31")
    assert spec.metadata.training_data == "LAION-400M" and spec.metadata.trained
    assert registry.get("model", "openclip/rn50x4:random").metadata.family == "convnet"
    for unknown in ("openclip/rn50:no_such_tag", "openclip/no-such-net:openai",
                    "timm/no_such_net:random", "timm/resnet50.no_such_tag"):  # fmt: skip
        with pytest.raises(UnknownIdentifierError):
            registry.get("model", unknown)


def check_features(model, stimuli, min_layers: int) -> None:
    config = ExtractionConfig(batch_size=len(stimuli))
    features = extract_features(model, stimuli, FeatureRequest(frozenset({16}), True), config)
    assert len(features) >= min_layers, (model.identifier, features.layer_names)
    depths = [layer.relative_depth for layer in features]
    assert depths == sorted(depths) and depths[-1] == (1.0 if len(features) > 1 else 0.0)
    for layer in features:
        assert np.isfinite(layer.projections[16]).all(), (model.identifier, layer.name)
        rows, cols = np.nonzero(~np.isfinite(layer.rdm))
        if rows.size:
            # correlation distance is undefined only next to a stimulus whose pattern is flat
            # (a saturated sigmoid of a random network, for instance)
            images = [stimuli.image(s) for s in stimuli.stimulus_ids]
            acts = layer_activations(model, images, [layer.name])[layer.name]
            flat = acts.std(axis=1) == 0
            assert (flat[rows] | flat[cols]).all(), (model.identifier, layer.name)
    return features


# identifier, minimal number of distinct layers
REPRESENTATIVE = [
    ("torchvision/googlenet:random", 100),
    ("torchvision/inception_v3:random", 150),
    ("torchvision/squeezenet1_1:random", 40),
    ("timm/deit_tiny_patch16_224:random", 100),
    ("timm/resmlp_12_224:random", 80),
    ("openclip/vit-b-32:random", 70),
    ("taskonomy/random", 150),
    ("cifar/resnet20:random", 50),
    ("baseline/gist", 1),
    ("baseline/rff", 1),
]


@pytest.mark.parametrize(("identifier", "min_layers"), REPRESENTATIVE)
def test_family_builds_and_extracts(identifier, min_layers, tiny_stimuli):
    model = brainrank.load_model(identifier)
    assert model.metadata.trained is False
    if model.metadata.source != "baseline":
        assert model.metadata.n_params > 0
    check_features(model, tiny_stimuli, min_layers)


def test_googlenet_and_inception_have_no_auxiliary_heads_at_eval():
    for name in ("googlenet", "inception_v3"):
        model = brainrank.load_model(f"torchvision/{name}:random")
        names = {n for n, _ in model.module.named_modules()}
        assert not any(n.startswith(("aux1", "aux2", "AuxLogits")) for n in names), name


def test_random_variants_are_identical_twice(tiny_stimuli):
    request = FeatureRequest(frozenset({16}), True)
    for identifier in ("cifar/resnet20:random", "timm/deit_tiny_patch16_224:random"):
        a, b = (
            extract_features(brainrank.load_model(identifier), tiny_stimuli, request)
            for _ in range(2)
        )
        assert len(a.layers) > 0 and a.layer_names == b.layer_names, identifier
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.rdm, y.rdm)
            np.testing.assert_array_equal(x.projections[16], y.projections[16])


@pytest.mark.parametrize(
    ("identifier", "where"),
    [
        ("torchvision/resnet18", ["resnet18-f37072fd.pth", "hub/checkpoints", "https://"]),
        ("timm/resnet18", ["timm/resnet18.a1_in1k", "model.safetensors", "huggingface.co"]),
        ("openclip/rn50:openai", ["timm/resnet50_clip.openai", "open_clip", "huggingface.co"]),
        ("taskonomy/normal", ["normal_encoder-", "hub/checkpoints", "github.com"]),
        ("cifar/resnet20", ["resnet20-12fca82f.th", "hub/checkpoints", "github.com"]),
    ],
)
def test_missing_weights_say_what_and_where(identifier, where, torch_home, hf_home):
    with pytest.raises(WeightsUnavailableError) as info:
        brainrank.load_model(identifier)
    message = str(info.value)
    assert identifier in message and "weights=PATH" in message
    for piece in where:
        assert piece in message, (piece, message)


#: architectures of checkpoint families with no random variant of their own listed (DINO's
#: ViT-S/8 on timm's resolver; its ViT-S/16 and B/16, VISSL's and Places365's ResNet-50 and
#: AlexNet are listed by the timm and torchvision plugins)
EXTRA_RANDOM = ["timm/vit_small_patch8_224:random"]
#: one per new family: the sweep must reach each of them
NEW_FAMILIES = ["slip/vit-s16:random", "ipcl/alexnet-gn:random", "bit/resnetv2_50x1_bit:random",
                "midas/midas-v21:random", "detectron2/faster_rcnn_r_50_fpn_3x:random",
                "torchvision/fasterrcnn_resnet50_fpn:random", "torchvision/fcn_resnet50:random"]  # fmt: skip


@pytest.mark.slow
def test_every_listed_random_model_builds_and_extracts(registry, stimuli_factory):
    stimuli = stimuli_factory(n=3, size=16)
    swept = [
        identifier
        for identifier in registry.identifiers("model")
        if not registry.get("model", identifier).metadata.trained
    ] + EXTRA_RANDOM
    assert set(NEW_FAMILIES) <= set(swept)
    for identifier in swept:
        model = brainrank.load_model(identifier)
        check_features(model, stimuli, 1)
        del model
