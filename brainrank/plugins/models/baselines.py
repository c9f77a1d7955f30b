"""Hand-made baseline models: raw pixels, a Gabor filter bank, GIST and random Fourier
features.

- ``baseline/pixels``: the image itself, one layer ``pixels`` of 150,528 features. Exactly:
  the stimulus as 8-bit RGB (a greyscale stimulus has its grey value copied into all three
  channels), the shorter side resized to 224 pixels (bilinear, antialiased), the centre
  224 x 224 square cropped (a non-square image loses the ends of its longer side), the
  values divided by 255 (so in [0, 1]), no mean subtraction or other normalisation,
  flattened channel-major (3 x 224 x 224).
- ``baseline/pixels:native``: the stimulus at its own resolution, nothing resized or
  cropped: 8-bit RGB divided by 255, flattened channel-major (3 x H x W features). Raw
  pixels at a fixed 224 px are not the images a dataset showed: a 31 x 31 greyscale
  stimulus becomes 150,528 features, mostly interpolated copies, and a fixed-penalty ridge
  then shrinks it very differently (issue 10: Allen VISp at alpha 1e5 gave -0.132 vs -0.004
  native). Use the native variant for the question "how well do the pixels a subject saw
  predict the responses"; the 224 px one as the input every network sees. Every stimulus
  of the set must have the same size (a clear error says otherwise); a greyscale set gives
  three identical channels, which scale the features' squared norm by 3 (equivalent to a
  3x smaller fixed penalty; irrelevant to metrics that standardise and choose alpha).
- ``baseline/gabor``: a bank of complex Gabor filters (8 orientations x 4 wavelengths of
  4, 8, 16 and 32 pixels, one-octave bandwidth) applied to the greyscale image at 128 x 128.
  Layers: ``energy`` (the quadrature-pair energy at every pixel, 32 x 128 x 128) and
  ``pool`` (that energy averaged on an 8 x 8 grid, 2048 features), the Gabor baseline of
  Conwell et al. (2021). The filters are defined in the frequency domain (a Gaussian
  around the preferred frequency), so their responses are complex: real part even, imaginary
  part odd phase; the image is padded with its mean to avoid wrap-around.
- ``baseline/gist``: the GIST descriptor of Oliva & Torralba (2001): the greyscale image at
  256 x 256 is prefiltered (log intensity, whitened by removing its low-pass part, then
  divided by the local contrast), filtered by the same kind of Gabor bank (8 orientations x 4
  wavelengths of 4 to 32 pixels), and each filter's energy is averaged on a 4 x 4 grid:
  one layer ``gist`` of 512 features.
- ``baseline/rff``: 4096 random Fourier features (Rahimi & Recht 2007) of the pixels: the
  image at 32 x 32 RGB in [0, 1] (d = 3072 values) mapped to ``sqrt(2 / 4096) cos(x W + b)``
  with ``W ~ N(0, 16 / d)`` (a Gaussian kernel of bandwidth ``sqrt(d) / 4``, about the
  distance between two natural images at that size) and ``b ~ U[0, 2 pi)``, drawn with seed 0:
  one layer ``rff``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

from brainrank.plugin import Model, ModelMetadata, ModelSpec, hookimpl
from brainrank.plugins.models._common import ImagePreprocess, with_loaded_facts

GABOR_SIZE = 128
ORIENTATIONS = 8
WAVELENGTHS = (4.0, 8.0, 16.0, 32.0)
GABOR_GROUP = 8  # filters per inverse FFT batch


def _metadata(name: str, description: str) -> ModelMetadata:
    return ModelMetadata(
        source="baseline",
        architecture=name,
        family="other",
        task="none",
        training_method="handcrafted",
        training_data="none",
        trained=False,
        description=description,
    )


PIXELS_DESCRIPTION = (
    "raw pixels: shorter side resized to 224 (bilinear, antialiased), centre crop 224 x 224, "
    "RGB (grey copied to 3 channels), values / 255 in [0, 1], no normalisation; 150,528 features"
)
NATIVE_PIXELS_DESCRIPTION = (
    "raw pixels at the stimuli's native resolution: no resize or crop, RGB (grey copied to 3 "
    "channels), values / 255 in [0, 1], no normalisation; 3 x H x W features"
)
GABOR_DESCRIPTION = "Gabor filter bank energy (8 orientations x 4 wavelengths), pooled 8 x 8"
GIST_DESCRIPTION = "GIST descriptor (Oliva & Torralba 2001): prefiltered Gabor energy, 4 x 4 grid"
RFF_DESCRIPTION = "4096 random Fourier features of 32 x 32 RGB pixels (Gaussian kernel, seed 0)"

GIST_SIZE = 256
GIST_GRID = 4
RFF_SIZE = 32
RFF_FEATURES = 4096
RFF_SEED = 0


def gabor_bank(size: int, orientations: int = ORIENTATIONS, wavelengths=WAVELENGTHS, pad: int = 0):
    """Frequency responses ``(n_filters, size + 2 pad, size + 2 pad)`` of the complex Gabor
    filters (one-octave bandwidth), ordered wavelength-major."""
    import torch

    full = size + 2 * pad
    f = torch.fft.fftfreq(full, dtype=torch.float64)
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    filters = []
    octave = 1.0
    for wavelength in wavelengths:
        f0 = 1.0 / wavelength
        # spatial sigma of a one-octave Gabor, then its frequency-domain counterpart
        sigma = (
            (wavelength / math.pi) * math.sqrt(math.log(2) / 2) * (2**octave + 1) / (2**octave - 1)
        )
        sigma_f = 1.0 / (2 * math.pi * sigma)
        for k in range(orientations):
            theta = math.pi * k / orientations
            cx, cy = f0 * math.cos(theta), f0 * math.sin(theta)
            g = torch.exp(-((fx - cx) ** 2 + (fy - cy) ** 2) / (2 * sigma_f**2))
            filters.append(g / g.max())
    return torch.stack(filters).float()


def _gabor_module():
    import torch
    from torch import nn

    class GaborEnergy(nn.Module):
        """Complex Gabor responses' magnitude for every filter at every pixel."""

        def __init__(self, size: int = GABOR_SIZE, pad: int = 32):
            super().__init__()
            self.size, self.pad = size, pad
            self.register_buffer("bank", gabor_bank(size, pad=pad), persistent=False)
            self.register_buffer(
                "luminance", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            grey = (x * self.luminance).sum(1)
            grey = grey - grey.mean(dim=(1, 2), keepdim=True)
            grey = nn.functional.pad(grey, (self.pad,) * 4)
            spectrum = torch.fft.fft2(grey)[:, None]
            # a few filters at a time, the magnitude taken of the unpadded region only: the
            # same values as the whole bank at once (each inverse FFT is its own), with a
            # quarter of the complex temporaries (32 images: 0.15 GB instead of 0.75 GB)
            # and faster (0.9 s instead of 1.7-2.1 s on a 2-core VM)
            p, size = self.pad, self.size
            out = grey.new_empty((grey.shape[0], self.bank.shape[0], size, size))
            for i in range(0, self.bank.shape[0], GABOR_GROUP):
                response = torch.fft.ifft2(spectrum * self.bank[None, i : i + GABOR_GROUP])
                torch.abs(
                    response[..., p : p + size, p : p + size], out=out[:, i : i + GABOR_GROUP]
                )
            return out

    return nn.Sequential(OrderedDict(energy=GaborEnergy(), pool=nn.AdaptiveAvgPool2d(8))).eval()


def build_gabor() -> Model:
    module = _gabor_module()
    preprocess = ImagePreprocess(size=GABOR_SIZE, resize=GABOR_SIZE, mean=(0, 0, 0), std=(1, 1, 1))
    return Model(
        identifier="baseline/gabor",
        module=module,
        preprocess=preprocess,
        preprocess_id=f"{preprocess.describe()};orientations={ORIENTATIONS};wavelengths={WAVELENGTHS}",
        metadata=with_loaded_facts(_metadata("gabor", GABOR_DESCRIPTION), module, GABOR_SIZE),
    )


def build_pixels() -> Model:
    from torch import nn

    module = nn.Sequential(OrderedDict(pixels=nn.Identity())).eval()
    preprocess = ImagePreprocess(size=224, resize=224, mean=(0, 0, 0), std=(1, 1, 1))
    return Model(
        identifier="baseline/pixels",
        module=module,
        preprocess=preprocess,
        preprocess_id=preprocess.describe(),
        metadata=with_loaded_facts(_metadata("pixels", PIXELS_DESCRIPTION), module, 224),
    )


class NativePixels:
    """uint8 RGB ``(H, W, 3)`` -> float tensor ``(3, H, W)`` in [0, 1], nothing resized.

    Remembers the first image's size and refuses an image of another size (the layer must
    have one width for every stimulus)."""

    def __init__(self):
        self.shape: tuple[int, int] | None = None

    def describe(self) -> str:
        return "native-resolution;rgb;scale=1/255;no-normalisation"

    def __call__(self, image):
        import numpy as np
        import torch

        from brainrank.plugin import InputError

        array = np.array(image, dtype=np.uint8)
        if self.shape is None:
            self.shape = array.shape[:2]
        elif array.shape[:2] != self.shape:
            raise InputError(
                f"baseline/pixels:native needs every stimulus at one size; this stimulus set "
                f"has images of {self.shape[0]} x {self.shape[1]} and {array.shape[0]} x "
                f"{array.shape[1]} pixels. Use baseline/pixels (resized to 224 x 224) instead."
            )
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0


def build_native_pixels() -> Model:
    from torch import nn

    module = nn.Sequential(OrderedDict(pixels=nn.Identity())).eval()
    preprocess = NativePixels()
    return Model(
        identifier="baseline/pixels:native",
        module=module,
        preprocess=preprocess,
        preprocess_id=preprocess.describe(),
        metadata=with_loaded_facts(_metadata("pixels", NATIVE_PIXELS_DESCRIPTION), module, None),
    )


def _gist_module():
    import torch
    from torch import nn

    class Gist(nn.Module):
        """GIST of a batch of RGB images in [0, 1]: ``(batch, 32 filters, 4, 4)``."""

        def __init__(self, size: int = GIST_SIZE, grid: int = GIST_GRID, pad: int = 32):
            super().__init__()
            self.size, self.grid, self.pad = size, grid, pad
            full = size + 2 * pad
            f = torch.fft.fftfreq(full, dtype=torch.float64) * full  # cycles per image
            fy, fx = torch.meshgrid(f, f, indexing="ij")
            # Gaussian low-pass of the prefilter (4 cycles per image, as in the original)
            lowpass = torch.exp(-(fx**2 + fy**2) / (4.0 / math.sqrt(math.log(2))) ** 2)
            self.register_buffer("lowpass", lowpass.float(), persistent=False)
            self.register_buffer("bank", gabor_bank(size, pad=pad), persistent=False)
            self.register_buffer(
                "luminance", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), persistent=False
            )

        def _smooth(self, x: torch.Tensor) -> torch.Tensor:
            return torch.fft.ifft2(torch.fft.fft2(x) * self.lowpass).real

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            grey = (x * self.luminance).sum(1)
            grey = torch.log1p(255.0 * grey)
            p = self.pad
            padded = nn.functional.pad(grey[:, None], (p,) * 4, mode="reflect")[:, 0]
            white = padded - self._smooth(padded)
            contrast = torch.sqrt(self._smooth(white**2).clamp_min(0.0))
            normed = white / (0.2 + contrast)
            response = torch.fft.ifft2(torch.fft.fft2(normed)[:, None] * self.bank[None])
            energy = response.abs()[..., p : p + self.size, p : p + self.size]
            return nn.functional.adaptive_avg_pool2d(energy, self.grid)

    return nn.Sequential(OrderedDict(gist=Gist())).eval()


def build_gist() -> Model:
    module = _gist_module()
    preprocess = ImagePreprocess(size=GIST_SIZE, resize=GIST_SIZE, mean=(0, 0, 0), std=(1, 1, 1))
    return Model(
        identifier="baseline/gist",
        module=module,
        preprocess=preprocess,
        preprocess_id=f"{preprocess.describe()};gist-v1;orientations={ORIENTATIONS};"
        f"wavelengths={WAVELENGTHS};grid={GIST_GRID}",
        metadata=with_loaded_facts(_metadata("gist", GIST_DESCRIPTION), module, GIST_SIZE),
    )


def _rff_module():
    import torch
    from torch import nn

    class RandomFourierFeatures(nn.Module):
        def __init__(self, d: int = 3 * RFF_SIZE * RFF_SIZE, n_features: int = RFF_FEATURES):
            super().__init__()
            generator = torch.Generator().manual_seed(RFF_SEED)
            scale = 4.0 / math.sqrt(d)  # W ~ N(0, 1 / sigma^2) with sigma = sqrt(d) / 4
            weight = torch.randn(d, n_features, generator=generator, dtype=torch.float64) * scale
            phase = torch.rand(n_features, generator=generator, dtype=torch.float64) * 2 * math.pi
            self.register_buffer("weight", weight.float())
            self.register_buffer("phase", phase.float())
            self.norm = math.sqrt(2.0 / n_features)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm * torch.cos(x.flatten(1) @ self.weight + self.phase)

    return nn.Sequential(OrderedDict(rff=RandomFourierFeatures())).eval()


def build_rff() -> Model:
    module = _rff_module()
    preprocess = ImagePreprocess(size=RFF_SIZE, resize=RFF_SIZE, mean=(0, 0, 0), std=(1, 1, 1))
    return Model(
        identifier="baseline/rff",
        module=module,
        preprocess=preprocess,
        preprocess_id=f"{preprocess.describe()};rff-v1;features={RFF_FEATURES};seed={RFF_SEED}",
        metadata=with_loaded_facts(_metadata("rff", RFF_DESCRIPTION), module, RFF_SIZE),
    )


@hookimpl
def brainrank_models() -> list[ModelSpec]:
    return [
        ModelSpec("baseline/pixels", build_pixels, _metadata("pixels", PIXELS_DESCRIPTION)),
        ModelSpec(
            "baseline/pixels:native",
            build_native_pixels,
            _metadata("pixels", NATIVE_PIXELS_DESCRIPTION),
        ),
        ModelSpec("baseline/gabor", build_gabor, _metadata("gabor", GABOR_DESCRIPTION)),
        ModelSpec("baseline/gist", build_gist, _metadata("gist", GIST_DESCRIPTION)),
        ModelSpec("baseline/rff", build_rff, _metadata("rff", RFF_DESCRIPTION)),
    ]
