"""Each paper's model set, held against the paper's own text and tables
(/work/shared/papers): every model the paper names or tabulates is a member, by the
brainrank identifier the test maps it to here, and every member resolves to a model or says
why it cannot be built."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from brainrank.cli import main
from brainrank.core.errors import UnknownIdentifierError
from brainrank.core.registry import Registry
from brainrank.core.taxonomy import TASKONOMY_TASKS


@pytest.fixture(scope="module")
def registry():
    return Registry()


def paper(shared_dir, name: str) -> str:
    return (shared_dir / "papers" / name).read_text()


def members(registry, name: str) -> dict[str, str | None]:
    found = registry.model_set(name).members
    names = [m.paper_name for m in found]
    assert len(set(names)) == len(names), "a set names two members alike"
    return {m.paper_name: m.identifier for m in found}


def test_every_member_resolves_or_says_why(registry):
    sets = registry.model_sets()
    assert {"mouse2021", "nsd2023", "taskonomy2019", "stacking2023"} <= set(sets)
    for model_set in sets.values():
        assert model_set.members, model_set.name
        for member in model_set.members:
            if member.unsupported:
                assert len(member.unsupported) > 20, member  # a reason, not a flag
                continue
            spec = registry.get("model", member.identifier)  # raises for an unknown model
            assert spec.identifier == member.identifier


# --------------------------------------------------------------------------- Neural Taskonomy

#: section 2.2's names -> Taskonomy task (this test's own reading of the paper)
NEURAL_TASKONOMY = {
    "autoencoding": "autoencoding", "colorization": "colorization",
    "curvature estimation": "curvature", "denoising": "denoising",
    "depth estimation": "depth_euclidean", "edge detection (2D)": "edge_texture",
    "edge detection (3D) or occlusion edges detection": "edge_occlusion",
    "keypoint detection (2D)": "keypoints2d", "keypoint detection (3D)": "keypoints3d",
    "depth": "depth_zbuffer", "reshading": "reshading", "room layout estimation": "room_layout",
    "segmentation (2D)": "segment_unsup2d", "segmentation (2.5D)": "segment_unsup25d",
    "surface normal estimation": "normal", "vanishing point estimation": "vanishing_point",
    "semantic segmentation": "segment_semantic", "jigsaw puzzle": "jigsaw",
    "inpainting": "inpainting", "object classification": "class_object",
    "scene classification": "class_scene",
}  # fmt: skip


def test_taskonomy2019_is_the_papers_21_tasks(shared_dir, registry):
    text = " ".join(paper(shared_dir, "neural-taskonomy.txt").split())
    found = re.search(r"model bank: (.*?)\. In the Taskonomy training scheme", text)
    assert found, "the paper's list of tasks was not found"
    names = [n.strip() for n in re.split(r",| and (?=scene)", found[1]) if n.strip()]
    assert len(names) == 21 and "21 tasks" in text
    assert set(names) == set(NEURAL_TASKONOMY)
    got = members(registry, "taskonomy2019")
    assert got == {n: f"taskonomy/{NEURAL_TASKONOMY[n]}" for n in names}
    # the four multi-image tasks the paper excludes are not members
    excluded = {"egomotion", "fixated_pose", "nonfixated_pose", "point_matching"}
    assert not {i.split("/")[1] for i in got.values()} & excluded
    assert {i.split("/")[1] for i in got.values()} | excluded == set(TASKONOMY_TASKS)


# --------------------------------------------------------------------------- mouse 2021

#: figure 12's task names -> Taskonomy task
TASKONOMY_TABLE = {
    "Autoencoder": "autoencoding", "Object Classification": "class_object",
    "Scene Classification": "class_scene", "Curvatures": "curvature", "Denoising": "denoising",
    "Euclidean Depth": "depth_euclidean", "Z-Buffer Depth": "depth_zbuffer",
    "Occlusion Edges": "edge_occlusion", "Texture Edges": "edge_texture",
    "Egomotion": "egomotion", "Camera Pose (Fixated)": "fixated_pose",
    "Inpainting": "inpainting", "Jigsaw": "jigsaw", "2D Keypoints": "keypoints2d",
    "3D Keypoints": "keypoints3d", "Camera Pose (Nonfixated)": "nonfixated_pose",
    "Surface Normals": "normal", "Point Matching": "point_matching", "Reshading": "reshading",
    "Room Layout": "room_layout", "Semantic Segmentation": "segment_semantic",
    "Unsupervised 2.5D Segmentation": "segment_unsup25d",
    "Unsupervised 2D Segmentation": "segment_unsup2d", "Vanishing Point": "vanishing_point",
}  # fmt: skip


def test_mouse2021_holds_the_papers_tables_and_counts(shared_dir, registry):
    text = paper(shared_dir, "conwell2021-mouse-model-zoology.txt")
    ids = set(members(registry, "mouse2021").values())
    # figure 12: the 24 Taskonomy tasks with their cluster
    table = text[text.index("Task\tCluster\tDefinition") : text.index("Figure 12:")]
    rows = [line.split("\t") for line in table.splitlines()[1:] if "\t" in line]
    assert len(rows) == 24
    for name, cluster, _definition in rows:
        task = TASKONOMY_TABLE[name]
        assert f"taskonomy/{task}" in ids, name
        if cluster != "Other":  # denoising and normals: see brainrank.core.taxonomy
            assert TASKONOMY_TASKS[task].casefold() == cluster.casefold(), name
    assert "taskonomy/random" in ids  # "the randomly initialized version of Taskonomy"
    # figure 7: torchvision architectures by name, each trained and random (section 2.2)
    figure7 = text[text.index("Model\tWeights\tV4\tIT") : text.index("Figure 7:")]
    names = [line.split("\t")[0] for line in figure7.splitlines()[1:] if "\t" in line]
    assert len(names) == 20
    for name in names:
        identifier = "torchvision/" + name.replace(".", "_")
        assert {identifier, f"{identifier}:random"} <= ids, name
    for named in ("densenet169", "densenet201"):  # section 3.2
        assert f"torchvision/{named}" in ids
    assert "Inception-ResNet-V2" in text and "timm/inception_resnet_v2" in ids
    # section 2.2: 26 torchvision and 66 timm architectures, trained and random
    counts = re.search(r"use (\d+) model architectures from the Torchvision.*?and (\d+) model "
                       r"architectures from the.*?Timm", text, re.S)  # fmt: skip
    assert counts
    model_set = registry.model_set("mouse2021")
    trained = [
        m.identifier for m in model_set.members if m.identifier and ":random" not in m.identifier
    ]
    assert sum(i.startswith("torchvision/") for i in trained) >= int(counts[1])
    assert sum(i.startswith("timm/") for i in trained) >= int(counts[2])
    for identifier in trained:
        if identifier.startswith(("torchvision/", "timm/")):
            assert f"{identifier.split('.')[0]}:random" in ids, identifier
    # the baselines of section 3.1
    assert "random fourier features" in text and "gabor filters" in text and "GIST" in text
    assert {"baseline/gabor", "baseline/gist", "baseline/rff"} <= ids
    code = [m for m in model_set.members if m.named_in == "code"]
    assert code and all(m.identifier.startswith(("torchvision/", "timm/")) for m in code)


# --------------------------------------------------------------------------- NSD

#: the NSD paper's Taskonomy table (figure 3A) -> Taskonomy task; "Camera Pose" appears twice
NSD_TABLE = {
    "Autoencoder": ["autoencoding"], "Denoising": ["denoising"], "Texture Edges": ["edge_texture"],
    "Inpainting": ["inpainting"], "2D Keypoints": ["keypoints2d"],
    "2D Segmentation": ["segment_unsup2d"], "Curvatures": ["curvature"],
    "Euclidean Depth": ["depth_euclidean"], "Z-Buffer Depth": ["depth_zbuffer"],
    "Occlusion Edges": ["edge_occlusion"], "3D Keypoints": ["keypoints3d"],
    "Surface Normals": ["normal"], "Reshading": ["reshading"],
    "2.5D Segmentation": ["segment_unsup25d"], "Egomotion": ["egomotion"],
    "Camera Pose": ["fixated_pose", "nonfixated_pose"], "Jigsaw": ["jigsaw"],
    "Point Matching": ["point_matching"], "Room Layout": ["room_layout"],
    "Vanishing Point": ["vanishing_point"], "Object Classification": ["class_object"],
    "Scene Classification": ["class_scene"], "Semantic Segmentation": ["segment_semantic"],
    "Random Weights": ["random"],
}  # fmt: skip

#: models the NSD paper names in its text -> a test every such member passes
NSD_NAMED = {
    "CLIP": lambda i: i.startswith("openclip/") and i.endswith(":openai"),
    "BarlowTwins": lambda i: i == "torchvision/resnet50@barlowtwins",
    "SimCLR": lambda i: i == "torchvision/resnet50@simclr",
    "Mask-RCNN": lambda i: i.startswith("detectron2/mask_rcnn"),
    "Visformer": lambda i: i.startswith("timm/visformer"),
    "DeIT": lambda i: i.startswith("timm/deit"),
    "ResMLP": lambda i: i.startswith("timm/resmlp"),
    "gMixer": lambda i: i.startswith("timm/gmixer"),
    "VGG": lambda i: i.startswith("torchvision/vgg"),
    "MobileNet": lambda i: "mobilenet" in i,
    "DINO": lambda i: i.startswith("timm/vit_") and i.endswith("@dino"),
    "Wightman et al., 2021": lambda i: i == "timm/resnet50.a1_in1k",
}


def test_nsd2023_holds_the_papers_tables_names_and_counts(shared_dir, registry):
    text = paper(shared_dir, "conwell-5.17-billion-fits.txt")
    model_set = registry.model_set("nsd2023")
    ids = [m.identifier for m in model_set.members if m.identifier]
    table = text[text.index("<b>2-D</b>") : text.index("### B. Classic RSA")]
    cells = [c.strip() for line in table.splitlines()[1:] for c in line.split("\t") if c.strip()]
    assert len(cells) == 25 and cells.count("Camera Pose") == 2
    for cell in set(cells):
        for task in NSD_TABLE[cell]:
            assert f"taskonomy/{task}" in ids, cell
    for name, check in NSD_NAMED.items():
        assert name in text, name  # the paper names it
        assert any(check(i) for i in ids), name
    flat = " ".join(text.split())
    # appendix A.2: 85 distinct models (123 with random ones) from six repositories
    assert "85 distinct models (123 total" in flat
    trained = [i for i in ids if not i.endswith(":random")]
    assert len(set(trained)) >= 85 and len(set(ids)) >= 123
    for repository, prefix in (("Torchvision", "torchvision/"), ("timm", "timm/"),
                               ("VISSL", "torchvision/resnet50@"), ("CLIP", "openclip/"),
                               ("Taskonomy", "taskonomy/"), ("Detectron2", "detectron2/")):  # fmt: skip
        assert repository in flat and any(i.startswith(prefix) for i in ids), repository
    # section 3.2: ImageNet convnets n = 24, transformers n = 13, MLP-mixers n = 5
    wanted = [int(n) for n in re.findall(r"\$n = (\d+)\$", flat)]
    assert wanted == [24, 13, 5]
    families: dict[str, set[str]] = {}
    for identifier in set(trained):
        meta = registry.get("model", identifier).metadata
        if meta.training_data == "ImageNet-1k" and meta.task == "classification":
            families.setdefault(meta.family, set()).add(identifier)
    assert len(families["convnet"]) >= 24
    assert len(families.get("transformer", set()) | families.get("hybrid", set())) >= 13
    assert len(families["mlp-mixer"]) >= 5


def test_stacking2023_holds_the_papers_networks(shared_dir, registry):
    text = paper(shared_dir, "joint-interpretation-stacking.txt")
    for phrase in ("AlexNet", "pretrained on ImageNet", "Places365", "ResNet50", "*Edge2d*",
                   "*Edge3d*"):  # fmt: skip
        assert phrase in text, phrase
    assert set(members(registry, "stacking2023").values()) == {
        "torchvision/alexnet", "torchvision/alexnet@places365", "torchvision/resnet50",
        "torchvision/resnet50@places365", "taskonomy/edge_texture", "taskonomy/edge_occlusion",
    }  # fmt: skip


# --------------------------------------------------------------------------- selection


def test_models_at_name_selects_the_set(registry):
    chosen = registry.select("model", "@taskonomy2019")
    assert len(chosen) == 21 and all(c.startswith("taskonomy/") for c in chosen)
    both = registry.select("model", "@stacking2023,baseline/pixels")
    assert both[-1] == "baseline/pixels" and len(both) == 7
    nsd = registry.select("model", "@nsd2023")
    assert "timm/vit_small_patch32_sam_224" not in nsd  # unsupported members are left out
    with pytest.raises(UnknownIdentifierError, match=r"@nsd2023"):
        registry.select("model", "@nsd2021")


def test_brainrank_models_at_set_shows_each_status(torch_home):
    (torch_home / "alexnet_places365.pth.tar").write_bytes(b"present, not read")
    out = CliRunner().invoke(main, ["models", "@stacking2023", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = {r["identifier"]: r for r in json.loads(out.output)}
    assert rows["torchvision/alexnet@places365"]["status"] == "present"
    absent = rows["torchvision/alexnet"]
    assert absent["status"] == "absent" and "alexnet-owt-7be5be79.pth" in absent["detail"]
    assert (
        str(torch_home) in absent["detail"] and "https://download.pytorch.org" in absent["detail"]
    )
    assert absent["training_data"] == "ImageNet-1k"  # the model's metadata comes with it
    table = CliRunner().invoke(main, ["models", "@midas"])
    assert "unsupported" in table.output and "DPT_Large" in table.output
    assert "1 absent, 3 unsupported" in table.output
