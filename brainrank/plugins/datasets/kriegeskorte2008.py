"""``kriegeskorte2008``: the 92 images of Kriegeskorte et al. (2008), human and monkey IT.

An RDM-only dataset: the files hold representational dissimilarity matrices, not voxel or
neuron patterns, so RSA metrics apply and regression (encoding) metrics refuse it.

Files (under ``<data_dir>/kriegeskorte2008``, as in the rsatoolbox repository,
``demos/92imageData``; MATLAB v5)::

    Kriegeskorte_Neuron2008_supplementalData.mat   92 images (175 x 175 RGB) with category
                                                   labels; monkey IT and human IT RDMs of
                                                   figure 1 (4186-long upper triangles)
    92_brainRDMs.mat                               human IT RDMs, 4 subjects x 2 sessions
    92_modelRDMs.mat                               (optional) model RDMs: animacy, HMAX, ...

RDMs (:meth:`Dataset.rdms`): the 8 human session RDMs (subjects BE, KO, SN, TI; region
``hIT``; descriptor ``session``) and the monkey IT RDM (674 neurons of 2 monkeys; subject
``monkeys``, region ``mIT``). The RSA metric averages the two sessions of a subject.
:meth:`Kriegeskorte2008.reference_rdms` has the figure-1 RDMs (human IT averaged over
subjects, 316 voxels; monkey IT) and the supplied model RDMs.

Stimulus ids are ``k92-01`` ... ``k92-92`` in the files' order (the paper's numbering,
1-based); metadata: category, and the human / face / animal / natural flags.

Ceilings: ``ceiling("rsa")`` per human subject is the leave-one-subject-out noise-ceiling
term: the Pearson r between the subject's (session-averaged) RDM and the pooled RDM of the
other three subjects (the lower bound of Nili et al. 2014, the inter-subject reference the
the brainrank default). ``ceiling("rsa-pairwise")`` is the NSD paper's inter-subject
reference (Conwell et al., "5.17 billion fits"): the mean Pearson r between pairs of subjects'
RDMs (per subject: its mean over the pairs it is in; the mean over subjects is the mean
over pairs). On these data the two differ: 0.394 leave-one-subject-out vs 0.284 pairwise;
use ``rsa-pairwise`` wherever the NSD protocol is claimed.
:meth:`Kriegeskorte2008.intersubject_reference` gives either by name, and
:meth:`Kriegeskorte2008.noise_ceiling` both Nili et al. bounds for any comparison
(``pearson``, ``spearman``, ``kendall_tau_a``) over subjects or over the 8 session RDMs.

``kriegeskorte2008/behaviour``: the human similarity judgements of the same 92 images
(Mur et al. 2013, "Human object-similarity judgments reflect and transcend the primate-IT
object representation", Front. Psychol. 4:128; 16 subjects arranged the images by
similarity, inverse multidimensional scaling, Kriegeskorte & Mur 2012), as RDMs: file
``92_behavRDMs.mat`` (rsatoolbox's ``demos/92imageData``; struct array ``rdms_behav_92``
with ``RDM``, ``name`` = ``"simJudge | subjectN"``). One RDM per subject (``subject1`` ...
``subject16``, region ``behaviour``), the same stimuli as ``kriegeskorte2008``; every RSA
metric scores it. Ceilings, from the subjects' RDMs as for the brain RDMs:
``ceiling("rsa")`` per subject is the leave-one-subject-out term (the subject's RDM vs the
pooled RDM of the other 15, Pearson r; the lower bound of Nili et al. 2014),
``ceiling("rsa-pairwise")`` the mean pairwise subject-subject r;
:meth:`Kriegeskorte2008.noise_ceiling` both bounds (``region="behaviour"``).

Licence: the files are redistributed by rsatoolbox under the MIT licence; cite the paper.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from brainrank.data.files import DatasetFactory, DataSource, RemoteFile, require
from brainrank.plugin import DatasetMetadata, DatasetSpec, InputError, RDMSet, StimulusSet, hookimpl
from brainrank.plugins.datasets._common import (
    RealDataset,
    pairwise_rdm_ceiling,
    rdm_noise_ceiling,
)

IDENTIFIER = "kriegeskorte2008"
BEHAVIOUR_IDENTIFIER = "kriegeskorte2008/behaviour"
FOLDER = "kriegeskorte2008"
N = 92
SUPPLEMENT = "Kriegeskorte_Neuron2008_supplementalData.mat"
BRAIN = "92_brainRDMs.mat"
MODELS = "92_modelRDMs.mat"
BEHAVIOUR = "92_behavRDMs.mat"
#: the rsatoolbox repository's folder, on its default branch and, as a fallback, "master"
RAW = tuple(
    f"https://raw.githubusercontent.com/rsagroup/rsatoolbox/{branch}/demos/92imageData"
    for branch in ("main", "master")
)
#: (sha256, size) of the files as distributed by rsatoolbox, checked on download
RELEASED = {
    SUPPLEMENT: ("06f21214399a5d43dc264eed19a7f4b8daf11c8622a59eec3e106064ce5e3504", 3603779),
    BRAIN: ("1743f90a15e895798a94318649e80e1123a7e5943a1703fa1dd7c31ea5780b7c", 224663),
    MODELS: ("e1d2b58bb2f9508bc13da4c81b94d1ab07823b25ed30b9563bd9d6d730c2a00a", 333004),
    BEHAVIOUR: ("7a8e118c144c3840adeeeef6ea0706a0be2b3e80df719af15fbb56fc62562f5f", 982719),
}
HUMAN_REGION = "hIT"
MONKEY_REGION = "mIT"
MONKEY_SUBJECT = "monkeys"
BEHAVIOUR_REGION = "behaviour"
BEHAVIOUR_CITATION = (
    "Mur M, Meys M, Bodurka J, Goebel R, Bandettini PA, Kriegeskorte N (2013) Human "
    "object-similarity judgments reflect and transcend the primate-IT object representation. "
    "Front Psychol 4:128. Images: Kriegeskorte et al. (2008), Neuron 60(6):1126-1141."
)

CITATION = (
    "Kriegeskorte N, Mur M, Ruff DA, Kiani R, Bodurka J, Esteky H, Tanaka K, Bandettini PA "
    "(2008) Matching categorical object representations in inferior temporal cortex of man "
    "and monkey. Neuron 60(6):1126-1141."
)
LICENCE = (
    "MIT (files redistributed by the rsatoolbox project, rsagroup/rsatoolbox); cite the paper."
)

METADATA = DatasetMetadata(
    species="human and macaque",
    modality="RDMs: human fMRI (IT, 316 voxels) and monkey single units (IT, 674 neurons)",
    regions=(HUMAN_REGION, MONKEY_REGION),
    n_stimuli=N,
    citation=CITATION,
    licence=LICENCE,
    description=(
        "92 object images; RDMs only (no patterns, so no encoding metrics): human IT of 4 "
        "subjects x 2 sessions, monkey IT. Neuroids: none (RDMs). Ceiling: RSA noise ceiling "
        "over subjects (leave-one-subject-out, per subject; 'rsa-pairwise': the NSD "
        "paper's mean pairwise subject-subject r)."
    ),
    kind="rdms",
)


BEHAVIOUR_METADATA = DatasetMetadata(
    species="human",
    modality="behaviour: similarity judgements (inverse MDS arrangements), as RDMs",
    regions=(BEHAVIOUR_REGION,),
    n_stimuli=N,
    citation=BEHAVIOUR_CITATION,
    licence=LICENCE,
    description=(
        "92 object images; one similarity-judgement RDM per subject (16 subjects). RDMs "
        "only: RSA metrics apply. Ceiling: leave-one-subject-out RSA noise ceiling over the "
        "16 subjects ('rsa-pairwise': mean pairwise subject-subject r)."
    ),
    kind="rdms",
)

_DESCRIPTIONS = {
    SUPPLEMENT: "images, labels and figure-1 RDMs",
    BRAIN: "human IT RDMs, 4 subjects x 2 sessions",
    MODELS: "model RDMs (reference only)",
    BEHAVIOUR: "human similarity-judgement RDMs, 16 subjects (kriegeskorte2008/behaviour)",
}


def files(root: Path, subjects: Any = None) -> list[RemoteFile]:
    """The files of ``kriegeskorte2008`` (the judgements are ``kriegeskorte2008/behaviour``'s,
    :func:`behaviour_files`, in the same folder)."""
    return _remote([(SUPPLEMENT, False), (BRAIN, False), (MODELS, True)])


def behaviour_files(root: Path, subjects: Any = None) -> list[RemoteFile]:
    """The files of ``kriegeskorte2008/behaviour``: the images and the judgement RDMs."""
    return _remote([(SUPPLEMENT, False), (BEHAVIOUR, False)])


def _remote(entries: list[tuple[str, bool]]) -> list[RemoteFile]:
    out = []
    for name, optional in entries:
        description = _DESCRIPTIONS[name]
        digest, size = RELEASED[name]
        out.append(
            RemoteFile(
                name,
                tuple(f"{base}/{name}" for base in RAW),
                checksum=("sha256", digest),
                size=size,
                description=description,
                optional=optional,
            )
        )
    return out


SOURCE = DataSource(
    folder=FOLDER,
    files=files,
    terms="MIT licence (rsatoolbox); cite Kriegeskorte et al. (2008).",
    subjects_help="",
)
BEHAVIOUR_SOURCE = DataSource(
    folder=FOLDER,
    files=behaviour_files,
    terms="MIT licence (rsatoolbox); cite Mur et al. (2013) and Kriegeskorte et al. (2008).",
    subjects_help="",
)


def _load(path: Path) -> dict[str, Any]:
    from brainrank.data.readers import load_mat

    return load_mat(path, "92-image file", squeeze_me=True, struct_as_record=False)


def _square(rdm: Any, what: str) -> np.ndarray:
    """A 92 x 92 RDM from a square matrix or a 4186-long upper triangle (MATLAB squareform
    order = numpy's ``triu_indices(92, 1)``)."""
    a = np.asarray(rdm, dtype=np.float64)
    if a.shape == (N, N):
        return a
    if a.shape == (N * (N - 1) // 2,):
        out = np.zeros((N, N))
        i, j = np.triu_indices(N, 1)
        out[i, j] = a
        out[j, i] = a
        return out
    raise InputError(f"{what} has shape {a.shape}; expected ({N}, {N}) or ({N * (N - 1) // 2},).")


def _field(record: Any, name: str, path: Path) -> Any:
    if not hasattr(record, name):
        raise InputError(f"a record in {path} has no field {name!r}; is it the released file?")
    return getattr(record, name)


class Kriegeskorte2008(RealDataset):
    """The dataset plus the figure-1 and model RDMs, and noise-ceiling bounds."""

    def __init__(
        self,
        *args: Any,
        reference: dict[str, np.ndarray],
        subjects_region: str = HUMAN_REGION,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self._reference = reference
        #: the region whose subjects' RDMs give the noise ceiling (human IT, or the
        #: judgements of ``kriegeskorte2008/behaviour``)
        self.subjects_region = subjects_region

    def reference_rdms(self) -> dict[str, np.ndarray]:
        """``{"hIT-fig1": ..., "mIT-fig1": ..., "model/animacy": ...}``, each 92 x 92."""
        return dict(self._reference)

    def human_rdms(self, unit: str = "subject") -> tuple[list[str], np.ndarray]:
        """The human subjects' RDMs (human IT; the judgements for the behaviour dataset) per
        ``"subject"`` (sessions averaged) or per ``"session"``."""
        rdms = self.rdms()
        human = [i for i, d in enumerate(rdms.descriptors) if d["region"] == self.subjects_region]
        if unit == "session":
            names = [
                f"{rdms.descriptors[i]['subject']}-{rdms.descriptors[i]['session']}" for i in human
            ]
            return names, rdms.dissimilarities[human]
        if unit != "subject":
            raise InputError("unit must be 'subject' or 'session'.")
        subjects: dict[str, list[int]] = {}
        for i in human:
            subjects.setdefault(rdms.descriptors[i]["subject"], []).append(i)
        stack = np.stack([rdms.dissimilarities[idx].mean(0) for idx in subjects.values()])
        return list(subjects), stack

    def noise_ceiling(self, method: str = "pearson", unit: str = "subject") -> tuple[float, float]:
        """``(lower, upper)`` bounds of the noise ceiling over the human subjects' RDMs (Nili
        et al. 2014)."""
        _, stack = self.human_rdms(unit)
        lower, upper, _ = rdm_noise_ceiling(stack, method)
        return lower, upper

    def intersubject_reference(self, protocol: str = "nsd", method: str = "pearson") -> float:
        """The human IT inter-subject reference under a named protocol:

        - ``"nsd"``: mean over pairs of subjects of the comparison of their (session-averaged)
          RDMs, as the NSD paper (0.284 with Pearson r);
        - ``"leave-one-out"``: mean over subjects of the comparison with the pooled RDM of
          the other subjects, the lower bound of Nili et al. 2014 (0.394).
        """
        _, stack = self.human_rdms("subject")
        if protocol == "nsd":
            return pairwise_rdm_ceiling(stack, method)[0]
        if protocol == "leave-one-out":
            return rdm_noise_ceiling(stack, method)[0]
        raise InputError(f"unknown protocol {protocol!r}; use 'nsd' or 'leave-one-out'.")


def _stimuli(root: Path) -> tuple[StimulusSet, dict[str, Any]]:
    """The 92 images with their labels, and the supplement's content."""
    import pandas as pd

    supplement = _load(root / SUPPLEMENT)
    for key in ("stimuli_92objs", "RDMs_mIT_hIT_fig1"):
        if key not in supplement:
            raise InputError(f"{root / SUPPLEMENT} lacks {key!r} (it has {sorted(supplement)}).")
    records = np.atleast_1d(supplement["stimuli_92objs"])
    if records.size != N:
        raise InputError(f"{root / SUPPLEMENT} holds {records.size} stimuli; expected {N}.")
    ids = [f"k92-{i + 1:02d}" for i in range(N)]
    images = {}
    rows = []
    for stimulus_id, record in zip(ids, records, strict=True):
        image = np.asarray(_field(record, "image", root / SUPPLEMENT))
        if image.dtype != np.uint8 or image.ndim != 3:
            raise InputError(f"image {stimulus_id} in {root / SUPPLEMENT} is not uint8 RGB.")
        images[stimulus_id] = image
        rows.append(
            {
                "category": str(getattr(record, "category", "")),
                **{
                    flag: bool(getattr(record, flag, False))
                    for flag in ("human", "face", "animal", "natural")
                },
            }
        )
    meta = pd.DataFrame(rows, index=pd.Index(ids, name="stimulus_id"))
    return StimulusSet(IDENTIFIER, ids, images.__getitem__, meta), supplement


def _ceilings(dataset_ref: list[Kriegeskorte2008], region: str) -> dict[str, Any]:
    """The ``rsa`` (leave-one-subject-out) and ``rsa-pairwise`` ceiling functions over the
    subjects' RDMs of ``region`` (``dataset_ref[0]``: the dataset, set once built)."""

    def rsa_ceiling() -> dict[tuple[str, str], float]:
        subjects, subject_stack = dataset_ref[0].human_rdms("subject")
        _, _, per_subject = rdm_noise_ceiling(subject_stack, "pearson")
        return {(s, region): float(v) for s, v in zip(subjects, per_subject, strict=True)}

    def rsa_pairwise_ceiling() -> dict[tuple[str, str], float]:
        subjects, subject_stack = dataset_ref[0].human_rdms("subject")
        _, per_subject = pairwise_rdm_ceiling(subject_stack, "pearson")
        return {(s, region): float(v) for s, v in zip(subjects, per_subject, strict=True)}

    return {"rsa": rsa_ceiling, "rsa-pairwise": rsa_pairwise_ceiling}


def build(root: Path) -> Kriegeskorte2008:
    require(IDENTIFIER, root, files(root))
    stimuli, supplement = _stimuli(root)
    ids = list(stimuli.stimulus_ids)
    fig1 = {}
    for record in np.atleast_1d(supplement["RDMs_mIT_hIT_fig1"]):
        name = str(_field(record, "name", root / SUPPLEMENT))
        key = (
            "mIT-fig1" if name.startswith("mIT") else "hIT-fig1" if name.startswith("hIT") else name
        )
        fig1[key] = _square(_field(record, "RDM", root / SUPPLEMENT), f"RDM {name!r}")
    if "mIT-fig1" not in fig1:
        raise InputError(f"{root / SUPPLEMENT} has no monkey IT RDM (names: {sorted(fig1)}).")

    brain = _load(root / BRAIN)
    if "RDMs" not in brain:
        raise InputError(f"{root / BRAIN} lacks 'RDMs' (it has {sorted(brain)}).")
    stack, descriptors = [], []
    pattern = re.compile(r"hIT\s*\|\s*(\w+)\s*\|\s*Session:\s*(\d+)")
    for record in np.atleast_1d(brain["RDMs"]).ravel(order="F"):
        name = str(_field(record, "name", root / BRAIN))
        match = pattern.search(name)
        if not match:
            raise InputError(
                f"cannot read subject and session from RDM name {name!r} in {root / BRAIN}."
            )
        stack.append(_square(_field(record, "RDM", root / BRAIN), f"RDM {name!r}"))
        descriptors.append(
            {
                "subject": match.group(1),
                "region": HUMAN_REGION,
                "session": int(match.group(2)),
                "species": "human",
            }
        )
    order = sorted(
        range(len(stack)), key=lambda i: (descriptors[i]["subject"], descriptors[i]["session"])
    )
    stack = [stack[i] for i in order]
    descriptors = [descriptors[i] for i in order]
    stack.append(fig1["mIT-fig1"])
    descriptors.append(
        {"subject": MONKEY_SUBJECT, "region": MONKEY_REGION, "session": 0, "species": "macaque"}
    )
    rdms = RDMSet(np.stack(stack), tuple(ids), descriptors)

    reference = dict(fig1)
    if (root / MODELS).is_file():
        models = _load(root / MODELS)
        for record in np.atleast_1d(models.get("Models", [])):
            name = str(_field(record, "name", root / MODELS))
            reference[f"model/{name}"] = _square(_field(record, "RDM", root / MODELS), name)

    dataset_ref: list[Kriegeskorte2008] = []
    dataset = Kriegeskorte2008(
        IDENTIFIER,
        stimuli,
        METADATA,
        rdms=rdms,
        ceilings=_ceilings(dataset_ref, HUMAN_REGION),
        info={"n_rdms": len(rdms), "subjects": sorted({d["subject"] for d in descriptors})},
        reference=reference,
    )
    dataset_ref.append(dataset)
    return dataset


def build_behaviour(root: Path) -> Kriegeskorte2008:
    """``kriegeskorte2008/behaviour``: the 16 subjects' similarity-judgement RDMs."""
    require(BEHAVIOUR_IDENTIFIER, root, behaviour_files(root))
    stimuli, _ = _stimuli(root)
    path = root / BEHAVIOUR
    content = _load(path)
    if "rdms_behav_92" not in content:
        raise InputError(f"{path} lacks 'rdms_behav_92' (it has {sorted(content)}).")
    pattern = re.compile(r"simJudge\s*\|\s*(\w+)")
    stack, descriptors = [], []
    for record in np.atleast_1d(content["rdms_behav_92"]).ravel(order="F"):
        name = str(_field(record, "name", path))
        match = pattern.search(name)
        if not match:
            raise InputError(f"cannot read the subject from RDM name {name!r} in {path}.")
        stack.append(_square(_field(record, "RDM", path), f"RDM {name!r}"))
        descriptors.append(
            {
                "subject": match.group(1),
                "region": BEHAVIOUR_REGION,
                "session": 1,
                "species": "human",
            }
        )
    if len(stack) < 2:
        raise InputError(f"{path} holds {len(stack)} RDMs; the noise ceiling needs 2 or more.")
    number = [int(re.sub(r"\D", "", d["subject"]) or 0) for d in descriptors]
    order = sorted(range(len(stack)), key=lambda i: (number[i], descriptors[i]["subject"]))
    rdms = RDMSet(
        np.stack([stack[i] for i in order]),
        stimuli.stimulus_ids,
        [descriptors[i] for i in order],
    )
    dataset_ref: list[Kriegeskorte2008] = []
    dataset = Kriegeskorte2008(
        BEHAVIOUR_IDENTIFIER,
        stimuli,
        BEHAVIOUR_METADATA,
        rdms=rdms,
        ceilings=_ceilings(dataset_ref, BEHAVIOUR_REGION),
        info={"n_rdms": len(rdms), "subjects": [d["subject"] for d in rdms.descriptors]},
        reference={},
        subjects_region=BEHAVIOUR_REGION,
    )
    dataset_ref.append(dataset)
    return dataset


FACTORY = DatasetFactory(build, SOURCE)
BEHAVIOUR_FACTORY = DatasetFactory(build_behaviour, BEHAVIOUR_SOURCE)


@hookimpl
def brainrank_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(IDENTIFIER, FACTORY, METADATA, available=FACTORY.available),
        DatasetSpec(
            BEHAVIOUR_IDENTIFIER,
            BEHAVIOUR_FACTORY,
            BEHAVIOUR_METADATA,
            available=BEHAVIOUR_FACTORY.available,
        ),
    ]
