"""Every analysis, in report order (:data:`ANALYSES`): its command name, title, caption, parameters, compute
function (:mod:`.adapters`), table columns and needs. Adding an analysis is one function in :mod:`.adapters`, its
parameters in :mod:`.params` and one entry here."""

from __future__ import annotations

from aelab.analyses import adapters as A
from aelab.analyses.params import (
    AnomalyParams,
    DictionaryParams,
    FailuresParams,
    GenerateParams,
    HeatmapParams,
    InterpolationParams,
    LatentMapParams,
    ManifoldParams,
    NllParams,
    NoParams,
    ProbeParams,
    RefineParams,
    TraverseParams,
)
from aelab.analyses.registry import Analysis
from aelab.models.measures import Measure as C

ANALYSES: list[Analysis] = [
    Analysis(
        "interpolate",
        "Latent interpolation",
        "Interpolate between two test images: top, the data-space blend (1-a)x + ax'; bottom, the decoded "
        "latent blend g((1-a)f(x) + af(x')), whose endpoints are the reconstructions of the two images.",
        InterpolationParams,
        A._interpolation,
        needs=("unlabelled", "images"),
    ),
    Analysis(
        "latent-map",
        "Latent map",
        "2-D map of the test codes, coloured by class.",
        LatentMapParams,
        A._latent_map,
        needs=("unlabelled",),
        report_needs=("labels",),
        report_params={"n": 2000},
    ),
    Analysis(
        "heatmap",
        "Code heatmap",
        "Codes of a batch of test images as an image (samples x units), unit activity, dead units in red.",
        HeatmapParams,
        A._heatmap,
        needs=("unlabelled",),
    ),
    Analysis(
        "dictionary",
        "Feature dictionary",
        "What each code unit decodes to: g(a e_j) - g(0).",
        DictionaryParams,
        A._dictionary,
        needs=("unlabelled", "code_units"),
    ),
    Analysis(
        "failures",
        "Where it fails",
        "Per-class test MSE and the worst-reconstructed test images.",
        FailuresParams,
        A._failures,
        (C("class", "class"), C("images", "images", "{:,}"), C("mse", "MSE", "{:.5f}")),
        needs=("unlabelled", "images"),
    ),
    Analysis(
        "compression",
        "Compression",
        "Code bytes per image stored as float32 / float16 / 8-bit (per-unit affine) / 8-bit entropy coded (a "
        "factorized model, a real range-coded stream) / transform coded (a decoder-weighted KLT, one step chosen "
        "on validation images to match the 8-bit PSNR, entropy coded) vs the raw 8-bit image, and the PSNR of the "
        "reconstruction decoded from each; beside them JPEG, WebP and PNG files of the first 1,000 test images.",
        NoParams,
        A._compression,
        (
            C("storage", "code stored as"),
            C("code_bytes", "bytes per image", "{:,.1f}"),
            C("image_bytes", "raw image bytes"),
            C("compression_ratio", "ratio", "{:.1f}x"),
            C("psnr", "PSNR (dB)", "{:.2f}"),
        ),
        needs=("unlabelled", "images"),
        report_needs=("train_classes",),  # a one-class model's code against codecs on every class: not in reports
    ),
    Analysis(
        "refine",
        "Code refinement",
        "The encoder's code is one guess for every image; a search per image (Adam on the code, the decoder "
        "fixed) finds codes of the same size that the decoder reconstructs better. Test MSE after each number of "
        "steps (0 = the encoder's code: the amortization gap, Cremer et al. 2018), and test images with the "
        "reconstruction of each code.",
        RefineParams,
        A._refine,
        (
            C("steps", "steps"),
            C("mse", "test MSE", "{:.5f}"),
            C("psnr", "PSNR (dB)", "{:.2f}"),
            C("change", "vs the encoder's code", "{:+.1%}"),
        ),
        needs=("unlabelled", "images", "continuous_code"),
        in_report=False,
    ),
    Analysis(
        "pca",
        "PCA at the same code size",
        "The autoencoder beside scikit-learn PCA fitted on the training images with as many components as "
        "the code has values.",
        NoParams,
        A._pca,
        (
            C("model", "model"),
            C("code_size", "code size"),
            C("test_mse", "test MSE", "{:.5f}"),
            C("test_psnr", "PSNR (dB)", "{:.2f}"),
        ),
        needs=("unlabelled",),
        in_report=False,
    ),
    Analysis(
        "probe",
        "Features with few labels",
        "Frozen-encoder linear probe (logistic regression) and kNN on the codes vs an MLP and a CNN trained "
        "from scratch on the same few labels (test accuracy).",
        ProbeParams,
        A._probes,
        (
            C("labels_per_class", "labels/class"),
            C("labelled", "labelled images", "{:,}"),
            C("logistic", "linear probe", "{:.3f}"),
            C("knn", "kNN", "{:.3f}"),
            C("mlp", "MLP (scratch)", "{:.3f}"),
            C("cnn", "CNN (scratch)", "{:.3f}"),
            C("helps", "codes help?"),
        ),
        needs=("unlabelled",),
        report_needs=("labels", "train_classes"),
        report_params={"labels": "10,100", "fit": True},
    ),
    Analysis(
        "anomaly-scores",
        "Anomaly scores",
        "An anomaly score on the test set (default: RaPP's NAP, the hidden activations of an image and its "
        "reconstruction along the encoder normalized on the training images; or SAP, MSE, 1 - SSIM): normal "
        "class(es) vs the rest. ROC-AUC and PR-AUC (scikit-learn, anomalies positive), the threshold at a "
        "percentile of the validation split's scores, the score histograms and the most and least anomalous test "
        "images.",
        AnomalyParams,
        A._anomaly,
        (
            C("normal", "normal"),
            C("roc_auc", "ROC-AUC", "{:.4f}"),
            C("pr_auc", "PR-AUC", "{:.4f}"),
            C("threshold", "threshold", "{:.5f}"),
            C("normal_flagged", "normal flagged", "{:.3f}"),
            C("anomalies_flagged", "anomalies flagged", "{:.3f}"),
        ),
        needs=("unlabelled",),
        report_needs=("labels", "one_class"),
    ),
    Analysis(
        "generate",
        "Generated samples",
        "Images decoded from sampled codes: the prior N(0, I) of a VAE, a Gaussian mixture fitted to the training "
        "codes of any other model, a VQ-VAE's index frequencies per position; a conditional model draws one row "
        "per class. Sample quality: the Frechet distance between generated and test images in the 128 features "
        "of a small CNN that aelab trains on the same dataset (NOT the Inception FID: comparable only between "
        "aelab runs on this dataset; lower is better), and for conditional models the share of samples of class "
        "c that this classifier labels c.",
        GenerateParams,
        A._generate,
        (
            C("sampler", "sampler"),
            C("samples", "samples", "{:,}"),
            C("frechet_distance", "Frechet distance", "{:.2f}"),
            C("class_accuracy", "class accuracy", "{:.3f}"),
            C("classifier_accuracy", "classifier test accuracy", "{:.3f}"),
        ),
        needs=("images",),
    ),
    Analysis(
        "traverse",
        "Latent traversals",
        "Each latent unit (rows, most-varying first) swept over its range (2nd-98th percentile of the test "
        "codes; a VAE's at least -2..2) with the other units held at a test image's code.",
        TraverseParams,
        A._traverse,
        needs=("images", "vector_code"),
    ),
    Analysis(
        "manifold",
        "Decoded latent manifold",
        "A grid of 2-D latent points decoded: a VAE's prior quantiles, or the range of another model's test codes.",
        ManifoldParams,
        A._manifold,
        needs=("images", "code_2d"),
    ),
    Analysis(
        "nll",
        "Test likelihood (IWAE)",
        "The test negative log-likelihood of a VAE as the literature reports it: the importance-weighted bound "
        "with k samples per image (Burda et al. 2016; k = 5,000), over the whole test split, in nats per image, "
        "beside the -ELBO of the same images. Comparable with published numbers on dynamically binarized data "
        "(data.binarize: dynamic).",
        NllParams,
        A._nll,
        (
            C("k", "k", "{:,}"),
            C("images", "test images", "{:,}"),
            C("nll", "-log p(x) <= (nats)", "{:.2f}"),
            C("nelbo", "-ELBO (nats)", "{:.2f}"),
            C("bits_per_dim", "bits/dim", "{:.4f}"),
        ),
        needs=("likelihood",),
        in_report=False,
    ),
]
"""Every analysis, in report order."""

BY_NAME = {a.name: a for a in ANALYSES}
