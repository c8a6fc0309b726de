"""The parameters of each analysis: a pydantic model per analysis whose field docstrings are the CLI's help
(``aelab interpolate --help``) and whose validation gives the one-line errors."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field


class Params(BaseModel):
    """Parameters of an analysis: unknown keys are errors, field docstrings are the help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class InterpolationParams(Params):
    from_: Optional[str] = Field(None, alias="from")
    """Class (index or name) of the first image; default class 0."""
    to: Optional[str] = None
    """Class (index or name) of the second image; default class 1."""
    index_from: Optional[int] = Field(None, ge=0)
    """Test-image index of the first image (instead of a class)."""
    index_to: Optional[int] = Field(None, ge=0)
    """Test-image index of the second image (instead of a class)."""
    steps: int = Field(10, ge=2)
    """Images per row."""
    seed: int = 0
    """Chooses the example of each class."""


class LatentMapParams(Params):
    method: Literal["auto", "pca", "tsne"] = "auto"
    """auto (the code itself if 2-D, else PCA), pca, or tsne."""
    n: int = Field(5000, ge=2)
    """Test images to map."""
    seed: int = 0
    """Seed of PCA / t-SNE."""


class HeatmapParams(Params):
    n: int = Field(512, ge=1)
    """Test images in the heatmap."""


class DictionaryParams(Params):
    amplitude: float = 1.0
    """Value of the one-hot code decoded for each unit."""


class FailuresParams(Params):
    k: int = Field(8, ge=1)
    """Worst-reconstructed test images to show."""


class NoParams(Params):
    pass


class AnomalyParams(Params):
    percentile: float = Field(99.0, ge=0, le=100)
    """Threshold: this percentile of the validation split's scores (normal images)."""
    score: Literal["nap_sap", "nap", "sap", "mse", "ssim"] = "nap_sap"
    """Anomaly score: nap or sap (RaPP: the hidden activations of the image and of its reconstruction along the
    encoder; NAP normalized by their spread on the training images), nap_sap (their product, the default), mse
    (per-image reconstruction MSE) or ssim (1 - SSIM)."""
    k: int = Field(8, ge=1)
    """Most and least anomalous test images to show."""
    normal_class: Optional[str] = None
    """Normal class indices (e.g. 0 or 0,3); default: the classes the run was trained on."""


class ProbeParams(Params):
    labels: str = "10,100,all"
    """Labelled images per class, comma-separated: positive integers or 'all'."""
    seed: int = 0
    """Chooses the labelled images and seeds the classifiers."""
    fit: bool = False
    """Lower a count above the smallest class to that class's size instead of refusing it (the report does)."""


class GenerateParams(Params):
    sampler: Literal["auto", "prior", "gmm", "categorical", "pixelcnn"] = "auto"
    """auto (prior for a VAE, pixelcnn for a VQ-VAE with a PixelCNN prior, categorical for a VQ-VAE, gmm
    otherwise), prior (N(0, I); VAEs), gmm (a Gaussian mixture of 10 components fitted to 10,000 training codes),
    categorical (a VQ-VAE's index frequencies per grid position), pixelcnn (the PixelCNN prior, position by
    position)."""
    n: int = Field(64, ge=1)
    """Samples in the figure (a conditional model: one row per class, ceil(n / classes) per row, at most 10)."""
    seed: int = 0
    """Seed of the samples."""
    quality: Optional[bool] = None
    """Measure the samples' quality (Frechet distance in the features of aelab's classifier, trained once per dataset:
    about 100 s on Fashion-MNIST the first time); None: for the models with a prior or codebook of their own
    (VAE, VQ-VAE, WAE), not for the other autoencoders."""
    quality_samples: Optional[int] = Field(None, ge=2)
    """Samples for the Frechet distance and class accuracy; default: as many as the test images."""


class TraverseParams(Params):
    index: int = Field(0, ge=0)
    """Test image whose code holds the other units."""
    steps: int = Field(9, ge=2)
    """Values per unit."""
    units: int = Field(16, ge=1)
    """Units shown, most-varying first."""


class ManifoldParams(Params):
    steps: int = Field(15, ge=2)
    """Grid points per latent axis."""
    class_: Optional[str] = Field(None, alias="class")
    """Conditional models: the class decoded (index or name); default class 0."""


class NllParams(Params):
    k: int = Field(5000, ge=1)
    """Importance samples per image (5,000: the literature's protocol; 1: the one-sample ELBO)."""
    images: Optional[int] = Field(None, ge=1)
    """Only the first N test images; None = the whole test split."""
    seed: int = 0
    """Seeds the samples."""


class RefineParams(Params):
    images: int = Field(1000, ge=2)
    """The first N test images to refine (the whole test split when it has fewer)."""
    steps: int = Field(100, ge=1)
    """Adam steps of each image's code search."""
    lr: float = Field(0.05, gt=0)
    """Adam's learning rate, in units of each code value's standard deviation over the images' codes."""
