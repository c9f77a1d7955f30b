"""The seed papers' model sets, as named selections (``--models @mouse2021``).

- ``@mouse2021``: Conwell et al. 2021, "Neural regression, representational similarity,
  model zoology & neural taskonomy at scale in rodent visual cortex" (NeurIPS): 92
  ImageNet architectures (26 torchvision, 66 timm; section 2.2), each trained and randomly
  initialised; the 24 Taskonomy encoders and a random one (section 2.3, figure 12); the
  Gabor, GIST and random-Fourier-feature baselines (section 3.1).
- ``@nsd2023``: Conwell, Prince, Alvarez & Konkle, "What can 5.17 billion regression fits
  tell us about artificial models of the human visual system?" (SVRHM 2021): 85 models from
  torchvision, timm, VISSL, CLIP, Taskonomy and Detectron2 (appendix A.2), ImageNet
  architectures trained and random (24 convnets, 13 transformers, 5 MLP-Mixers, section 3.2),
  the 24 Taskonomy encoders and a random one (figure 3), self-supervised ResNet-50s (SimCLR,
  Barlow Twins...) and DINO ViTs, CLIP ResNets and ViTs, a revamped supervised ResNet-50
  (Wightman et al. 2021), Mask R-CNN and other Detectron2 networks.
- ``@taskonomy2019``: Wang, Tarr & Wehbe 2019, "Neural Taskonomy" (NeurIPS): the 21
  single-image Taskonomy tasks (section 2.2; the four multi-image tasks are excluded there).
- ``@stacking2023``: Wang, Lin, Tarr & Wehbe, "Joint interpretation of representations in
  neural networks and the brain": AlexNet and ResNet-50 trained on ImageNet and on Places365,
  and Taskonomy's 2D and 3D edge networks.

**What the papers name, and what they do not.** The NSD and mouse papers give their model
counts and groups but do not list every model. Each member says where its name comes from:
``named_in="text"`` for models the paper names (or whose group it names with a table of its
members, as the Taskonomy tables), ``"code"`` for models taken from the authors' own model
list (``model_opts/model_typology.csv`` of github.com/annonymousecode/
Model-Zoology-and-Neural-Taskonomy for the mouse paper; of github.com/ColinConwell/DeepNSD at
commit 00dcbfa, December 2021, for the NSD paper, restricted to the six repositories the
paper names). Those lists are supersets of the papers' counts (31 torchvision and 80 timm
architectures where the mouse paper counts 26 and 66), so these sets are too; use
``brainrank models @nsd2023 --format json`` (``named_in``) to tell them apart.

**timm weights.** A timm name resolves to the weights timm's ``pretrained=True`` loads today
(timm 1.0); for some architectures these differ from the default of timm 0.4, which the
authors used (timm has since added better weights under new tags). Where a paper names the
weights (the revamped ResNet-50: ``resnet50.a1_in1k``) the member pins them.

**Layers.** brainrank extracts every layer; the Neural Taskonomy paper used only the
Taskonomy encoders' 16 x 16 x 8 latent, and the stacking paper 6 or 7 named layers per
network (noted on the members).
"""

from __future__ import annotations

from brainrank.plugin import ModelSet, SetMember, hookimpl

# --------------------------------------------------------------------------- shared pieces

#: Taskonomy tasks by the names of the mouse paper's figure 12 (the NSD paper's table uses
#: the same names)
TASKONOMY_NAMES: dict[str, str] = {
    "Autoencoder": "autoencoding",
    "Object Classification": "class_object",
    "Scene Classification": "class_scene",
    "Curvatures": "curvature",
    "Denoising": "denoising",
    "Euclidean Depth": "depth_euclidean",
    "Z-Buffer Depth": "depth_zbuffer",
    "Occlusion Edges": "edge_occlusion",
    "Texture Edges": "edge_texture",
    "Egomotion": "egomotion",
    "Camera Pose (Fixated)": "fixated_pose",
    "Inpainting": "inpainting",
    "Jigsaw": "jigsaw",
    "2D Keypoints": "keypoints2d",
    "3D Keypoints": "keypoints3d",
    "Camera Pose (Nonfixated)": "nonfixated_pose",
    "Surface Normals": "normal",
    "Point Matching": "point_matching",
    "Reshading": "reshading",
    "Room Layout": "room_layout",
    "Semantic Segmentation": "segment_semantic",
    "Unsupervised 2.5D Segmentation": "segment_unsup25d",
    "Unsupervised 2D Segmentation": "segment_unsup2d",
    "Vanishing Point": "vanishing_point",
}


def _taskonomy_members() -> list[SetMember]:
    members = [SetMember(name, f"taskonomy/{task}") for name, task in TASKONOMY_NAMES.items()]
    members.append(SetMember("Random Weights (Taskonomy encoder)", "taskonomy/random"))
    return members


def _trained_and_random(
    paper_name: str, identifier: str, named_in: str, note: str = ""
) -> list[SetMember]:
    base = identifier.split(".")[0] if identifier.startswith("timm/") else identifier
    return [
        SetMember(paper_name, identifier, named_in=named_in, note=note),
        SetMember(f"{paper_name} (random)", f"{base}:random", named_in=named_in, note=note),
    ]


def _architectures(
    source: str, names: tuple[str, ...], text: set[str], renames: dict[str, str] | None = None
) -> list[SetMember]:
    members: list[SetMember] = []
    for name in names:
        identifier = f"{source}/{(renames or {}).get(name, name)}"
        named_in = "text" if name in text else "code"
        members += _trained_and_random(f"{name} ({source})", identifier, named_in)
    return members


# --------------------------------------------------------------------------- mouse2021

#: torchvision ImageNet architectures of the authors' model list
MOUSE_TORCHVISION = (
    "alexnet", "densenet121", "densenet161", "densenet169", "densenet201", "googlenet",
    "inception_v3", "mnasnet0_5", "mnasnet1_0", "mobilenet_v2", "resnet101", "resnet152",
    "resnet18", "resnet34", "resnet50", "resnext101_32x8d", "resnext50_32x4d",
    "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "vgg11",
    "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "wide_resnet101_2", "wide_resnet50_2",
)  # fmt: skip
#: named in the mouse paper's text: figure 7 (Brain-Score V4/IT) and section 3.2
MOUSE_TEXT = {
    "alexnet", "densenet121", "googlenet", "mnasnet0_5", "mnasnet1_0", "mobilenet_v2",
    "resnet101", "resnet18", "resnet34", "resnet50", "resnext50_32x4d", "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0", "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg13", "vgg16", "vgg19",
    "wide_resnet50_2", "densenet169", "densenet201", "inception_resnet_v2",
}  # fmt: skip
MOUSE_TIMM = (
    "cait_s24_224", "coat_lite_mini", "coat_mini", "convit_base", "convit_small",
    "cspdarknet53", "cspresnet50", "deit_base_patch16_224", "deit_small_patch16_224",
    "deit_tiny_patch16_224", "dla169", "dla34", "eca_nfnet_l0", "eca_nfnet_l1",
    "ecaresnet101d", "ecaresnet50d", "efficientnetv2_rw_s", "fbnetc_100", "gernet_l",
    "gernet_s", "ghostnet_100", "hardcorenas_a", "hardcorenas_f", "inception_resnet_v2",
    "inception_v3", "inception_v4", "levit_128", "levit_256", "mixer_b16_224",
    "mixer_l16_224", "mixnet_l", "mixnet_s", "mnasnet_100", "mobilenetv3_rw", "nasnetalarge",
    "nf_resnet50", "nfnet_l0", "pit_b_224", "pit_s_224", "pit_ti_224", "pnasnet5large",
    "regnetx_064", "regnety_064", "repvgg_b3", "repvgg_b3g4", "res2net50_26w_4s", "resnest50d",
    "resnetrs50", "rexnet_100", "selecsls60", "semnasnet_100", "seresnet152d",
    "seresnext50_32x4d", "skresnet18", "skresnext50_32x4d", "spnasnet_100",
    "swin_base_patch4_window7_224", "swin_large_patch4_window7_224",
    "swin_small_patch4_window7_224", "swin_tiny_patch4_window7_224", "tf_efficientnet_b1",
    "tf_efficientnet_b3", "tf_efficientnet_b5", "tf_efficientnet_b7", "tnt_s_patch16_224",
    "tresnet_l", "twins_pcpvt_base", "twins_svt_base", "visformer_small",
    "vit_base_patch16_224", "vit_base_patch32_224", "vit_large_patch16_224",
    "vit_small_patch16_224", "vit_small_patch32_224", "vit_tiny_patch16_224",
    "vit_tiny_r_s16_p8_224", "xception", "xception65",
)  # fmt: skip


def mouse2021() -> ModelSet:
    members = _architectures("torchvision", MOUSE_TORCHVISION, MOUSE_TEXT)
    members += _architectures("timm", MOUSE_TIMM, MOUSE_TEXT)
    members += _taskonomy_members()
    members += [
        SetMember("Gabor filters on an 8x8 grid", "baseline/gabor"),
        SetMember("GIST (spatial envelope) descriptors", "baseline/gist"),
        SetMember(
            "4096 random Fourier features",
            "baseline/rff",
            note="the paper takes the best of 600 draws; baseline/rff is one draw (seed 0)",
        ),
    ]
    return ModelSet(
        name="mouse2021",
        title="Model zoology in mouse visual cortex (Conwell et al. 2021)",
        citation="Conwell, Mayo, Barbu, Buice, Alvarez & Katz (2021), Neural regression, "
        "representational similarity, model zoology & neural taskonomy at scale in rodent "
        "visual cortex, NeurIPS 34",
        members=tuple(members),
        description="92 ImageNet architectures (26 torchvision, 66 timm), trained and random; "
        "24 Taskonomy encoders and a random one; 3 baselines. The paper names 23 of the "
        "architectures; the others come from the authors' model list, a superset (31 + 78).",
    )


# --------------------------------------------------------------------------- nsd2023

NSD_TORCHVISION = tuple(n for n in MOUSE_TORCHVISION if n != "inception_v3")
#: named in the NSD paper's text (section 3.2 names these families by example)
NSD_TEXT = {"visformer_small", "resmlp_12_224", "gmixer_24_224", "vgg16", "resnet50",
            "mobilenet_v2", "deit_small_patch16_224"}  # fmt: skip
NSD_TIMM = (
    "beit_base_patch16_224", "beit_large_patch16_224", "cait_s24_224", "cait_xxs24_224",
    "coat_lite_small", "coat_lite_tiny", "coat_mini", "convit_base", "convit_small",
    "convit_tiny", "crossvit_base_240", "cspdarknet53", "cspresnet50", "deit_base_patch16_224",
    "deit_small_patch16_224", "deit_tiny_patch16_224", "dla169", "dla34", "eca_nfnet_l0",
    "eca_nfnet_l1", "ecaresnet101d", "ecaresnet50d", "efficientnet_b1", "efficientnet_b3",
    "efficientnetv2_rw_s", "fbnetc_100", "gcresnet50t", "gernet_l", "gernet_s", "ghostnet_100",
    "gmixer_24_224", "gmlp_s16_224", "halonet26t", "hardcorenas_a", "hardcorenas_f",
    "hrnet_w18", "hrnet_w64", "inception_resnet_v2", "inception_v3", "inception_v4",
    "jx_nest_base", "jx_nest_small", "jx_nest_tiny", "lambda_resnet26t", "levit_128",
    "levit_256", "mixer_b16_224", "mixer_l16_224", "mixnet_l", "mixnet_s", "mnasnet_100",
    "mobilenetv3_large_100", "mobilenetv3_rw", "nasnetalarge", "nf_resnet50", "nfnet_l0",
    "pit_b_224", "pit_s_224", "pit_ti_224", "pnasnet5large", "regnetx_064", "regnety_064",
    "repvgg_b1", "repvgg_b1g4", "res2net50_26w_4s", "resmlp_12_224", "resmlp_24_224",
    "resmlp_36_224", "resmlp_big_24_224", "resnest50d", "resnetrs50", "rexnet_100",
    "selecsls60", "semnasnet_100", "seresnet50", "seresnext50_32x4d", "skresnet18",
    "skresnext50_32x4d", "spnasnet_100", "swin_base_patch4_window7_224",
    "swin_large_patch4_window7_224", "swin_small_patch4_window7_224",
    "swin_tiny_patch4_window7_224", "tnt_s_patch16_224", "tresnet_l", "twins_pcpvt_base",
    "twins_svt_base", "visformer_small", "vit_base_patch16_224", "vit_base_patch16_sam_224",
    "vit_base_patch32_224", "vit_large_patch16_224", "vit_small_patch16_224",
    "vit_small_patch32_224", "vit_small_patch32_sam_224", "vit_tiny_patch16_224", "xception",
    "xception65", "xcit_large_24_p16_224", "xcit_nano_12_p16_224", "xcit_nano_12_p8_224",
    "xcit_small_12_p16_224",
)  # fmt: skip
#: timm names of 2021 that timm has renamed since
NSD_TIMM_RENAMES = {
    "jx_nest_base": "nest_base_jx",
    "jx_nest_small": "nest_small_jx",
    "jx_nest_tiny": "nest_tiny_jx",
    "vit_base_patch16_sam_224": "vit_base_patch16_224.sam_in1k",
}
NSD_TIMM_GONE = {
    "vit_small_patch32_sam_224": "timm no longer has the SAM-trained ViT-S/32 weights (only "
    "ViT-B/16 and B/32: timm/vit_base_patch32_224.sam_in1k)",
}
#: the VISSL ResNet-50s of the authors' list -> brainrank tags (by the file each loads)
NSD_VISSL = {
    "ResNet50-JigSaw-P100": ("jigsaw", ""),
    "ResNet50-JigSaw-Goyal19": ("jigsaw-goyal19", ""),
    "ResNet50-RotNet": ("rotnet", ""),
    "ResNet50-ClusterFit-16K-RotNet": ("clusterfit", ""),
    "ResNet50-NPID-4KNegative": ("npid", ""),
    "ResNet50-PIRL": ("pirl", ""),
    "ResNet50-SimCLR": ("simclr", ""),
    "ResNet50-DeepClusterV2-2x224": ("deepclusterv2-2x224", ""),
    "ResNet50-DeepClusterV2-2x224+6x96": ("deepclusterv2", ""),
    "ResNet50-SwAV-BS4096-2x224": (
        "swav", "the authors' name says 2x224; the file it loads (…a5990fc9) is VISSL's "
        "400-epoch 2x224+6x96 model"),
    "ResNet50-SwAV-BS4096-2x224+6x96": (
        "swav-2x224", "the authors' name says 2x224+6x96; the file it loads (…c8fd7169) is "
        "VISSL's 400-epoch 2x224 model"),
    "ResNet50-MoCoV2-BS256": ("mocov2", ""),
    "ResNet50-BarlowTwins-BS2048": ("barlowtwins", ""),
}  # fmt: skip
NSD_VISSL_TEXT = {"ResNet50-SimCLR", "ResNet50-BarlowTwins-BS2048"}
NSD_CLIP = {
    "RN50": "openclip/rn50:openai",
    "RN101": "openclip/rn101:openai",
    "RN50x4": "openclip/rn50x4:openai",
    "RN50x16": "openclip/rn50x16:openai",
    "ViT-B/32": "openclip/vit-b-32:openai",
    "ViT-B/16": "openclip/vit-b-16:openai",
}
NSD_DINO = {
    "dino_resnet50": "torchvision/resnet50@dino",
    "dino_vits16": "timm/vit_small_patch16_224@dino",
    "dino_vits8": "timm/vit_small_patch8_224@dino",
    "dino_vitb16": "timm/vit_base_patch16_224@dino",
    "dino_vitb8": "timm/vit_base_patch8_224@dino",
}
NSD_DINO_XCIT = ("dino_xcit_small_12_p16", "dino_xcit_small_12_p8", "dino_xcit_medium_24_p16",
                 "dino_xcit_medium_24_p8")  # fmt: skip
NSD_DETECTRON2 = (
    "faster_rcnn_R_101_C4_3x", "faster_rcnn_R_101_DC5_3x", "faster_rcnn_R_101_FPN_3x",
    "faster_rcnn_R_50_C4_3x", "faster_rcnn_R_50_DC5_3x", "faster_rcnn_R_50_FPN_3x",
    "faster_rcnn_X_101_32x8d_FPN_3x", "keypoint_rcnn_R_50_FPN_3x", "mask_rcnn_R_101_C4_3x",
    "mask_rcnn_R_101_DC5_3x", "mask_rcnn_R_101_FPN_1x", "mask_rcnn_R_101_FPN_3x",
    "mask_rcnn_R_50_C4_3x", "mask_rcnn_R_50_DC5_3x", "mask_rcnn_R_50_FPN_1x",
    "mask_rcnn_R_50_FPN_3x", "mask_rcnn_X_101_32x8d_FPN_1x", "mask_rcnn_X_101_32x8d_FPN_3x",
    "panoptic_fpn_R_50_3x", "retinanet_R_101_FPN_3x", "retinanet_R_50_FPN_3x",
)  # fmt: skip


def _detectron2_identifier(name: str) -> str:
    lvis = name.endswith("_1x") and name.startswith("mask_rcnn")
    return f"detectron2/{name.lower()}" + ("_lvis" if lvis else "")


def nsd2023() -> ModelSet:
    members = _architectures("torchvision", NSD_TORCHVISION, NSD_TEXT)
    for name in NSD_TIMM:
        if name in NSD_TIMM_GONE:
            members.append(SetMember(f"{name} (timm)", None, NSD_TIMM_GONE[name], named_in="code"))
            continue
        identifier = f"timm/{NSD_TIMM_RENAMES.get(name, name)}"
        named = "text" if name in NSD_TEXT else "code"
        members += _trained_and_random(f"{name} (timm)", identifier, named)
    members.append(
        SetMember(
            "ResNet-50, revamped category supervision (Wightman et al. 2021)",
            "timm/resnet50.a1_in1k",
            note="'ResNet strikes back' A1 weights",
        )
    )
    for name, (tag, note) in NSD_VISSL.items():
        named = "text" if name in NSD_VISSL_TEXT else "code"
        members.append(SetMember(name, f"torchvision/resnet50@{tag}", named_in=named, note=note))
    members += [SetMember(f"CLIP {k}", v) for k, v in NSD_CLIP.items()]
    members += [SetMember(f"DINO {k}", v, named_in="text") for k, v in NSD_DINO.items()]
    members += [
        SetMember(
            name,
            None,
            "DINO's XCiT backbones: brainrank has no reader for their "
            "checkpoints (only DINO's ResNet-50 and ViTs)",
            named_in="code",
        )
        for name in NSD_DINO_XCIT
    ]
    members += _taskonomy_members()
    members += [
        SetMember(
            name,
            _detectron2_identifier(name),
            named_in="text" if name == "mask_rcnn_R_50_FPN_3x" else "code",
        )
        for name in NSD_DETECTRON2
    ]
    return ModelSet(
        name="nsd2023",
        title="5.17 billion regression fits on NSD (Conwell, Prince, Alvarez & Konkle)",
        citation="Conwell, Prince, Alvarez & Konkle (2021), What can 5.17 billion regression "
        "fits tell us about artificial models of the human visual system? SVRHM workshop, "
        "NeurIPS 2021",
        members=tuple(members),
        description="85 models (123 with the random ones) from torchvision, timm, VISSL, CLIP, "
        "Taskonomy and Detectron2. The paper names its groups and a few models; the rest "
        "come from the authors' model list of those repositories (a superset).",
    )


# --------------------------------------------------------------------------- taskonomy2019

#: the 21 tasks as section 2.2 of Neural Taskonomy names them
NEURAL_TASKONOMY: dict[str, tuple[str, str]] = {
    "autoencoding": ("autoencoding", ""),
    "colorization": ("colorization", ""),
    "curvature estimation": ("curvature", ""),
    "denoising": ("denoising", ""),
    "depth estimation": ("depth_euclidean", "the paper lists 'depth estimation' and 'depth'; "
                         "Taskonomy has Euclidean and z-buffer depth: which is which is not said"),
    "edge detection (2D)": ("edge_texture", ""),
    "edge detection (3D) or occlusion edges detection": ("edge_occlusion", ""),
    "keypoint detection (2D)": ("keypoints2d", ""),
    "keypoint detection (3D)": ("keypoints3d", ""),
    "depth": ("depth_zbuffer", "see 'depth estimation'"),
    "reshading": ("reshading", ""),
    "room layout estimation": ("room_layout", ""),
    "segmentation (2D)": ("segment_unsup2d", ""),
    "segmentation (2.5D)": ("segment_unsup25d", ""),
    "surface normal estimation": ("normal", ""),
    "vanishing point estimation": ("vanishing_point", ""),
    "semantic segmentation": ("segment_semantic", ""),
    "jigsaw puzzle": ("jigsaw", ""),
    "inpainting": ("inpainting", ""),
    "object classification": ("class_object", ""),
    "scene classification": ("class_scene", ""),
}  # fmt: skip


def taskonomy2019() -> ModelSet:
    latent = "the paper encodes the encoder's 16 x 16 x 8 latent only"
    members = tuple(
        SetMember(name, f"taskonomy/{task}", note="; ".join(filter(None, (note, latent))))
        for name, (task, note) in NEURAL_TASKONOMY.items()
    )
    return ModelSet(
        name="taskonomy2019",
        title="Neural Taskonomy (Wang, Tarr & Wehbe 2019)",
        citation="Wang, Tarr & Wehbe (2019), Neural Taskonomy: inferring the similarity of "
        "task-derived representations from brain activity, NeurIPS 32",
        members=members,
        description="The 21 single-image Taskonomy tasks (egomotion, camera pose fixated and "
        "non-fixated and point matching take several images and are excluded, as in the "
        "paper).",
    )


# --------------------------------------------------------------------------- stacking2023


def stacking2023() -> ModelSet:
    alexnet = "layers in the paper: Conv-1 to Conv-5, FC-6, FC-7"
    resnet = (
        "layers in the paper: Conv-1, the last layer of the Conv-2 to Conv-5 blocks, the avgpool"
    )
    members = (
        SetMember("AlexNet-Object (ImageNet)", "torchvision/alexnet", note=alexnet),
        SetMember("AlexNet-Place (Places365)", "torchvision/alexnet@places365", note=alexnet),
        SetMember("ResNet50-Object (ImageNet)", "torchvision/resnet50", note=resnet),
        SetMember("ResNet50-Place (Places365)", "torchvision/resnet50@places365", note=resnet),
        SetMember("Edge2d (Taskonomy 2D edges)", "taskonomy/edge_texture"),
        SetMember("Edge3d (Taskonomy 3D edges)", "taskonomy/edge_occlusion"),
    )
    return ModelSet(
        name="stacking2023",
        title="Joint interpretation of representations (Wang, Lin, Tarr & Wehbe)",
        citation="Wang, Lin, Tarr & Wehbe, Joint interpretation of representations in neural "
        "networks and the brain",
        members=members,
        description="Object vs scene training at fixed architecture (AlexNet, ResNet-50) and "
        "2D vs 3D edges (Taskonomy).",
    )


@hookimpl
def brainrank_model_sets() -> list[ModelSet]:
    return [mouse2021(), nsd2023(), taskonomy2019(), stacking2023()]
