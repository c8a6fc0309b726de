"""Measures of trained models, by topic: reconstruction (:mod:`.reconstruction`), the latent space
(:mod:`.latent`), where a model fails (:mod:`.failures`), compression (:mod:`.compression`), generation
(:mod:`.generation`), anomaly scores (:mod:`.anomaly`), features with few labels (:mod:`.probes`), codes
searched per image (:mod:`.refinement`), and the baselines (:mod:`.pca`, the mean image). :mod:`.batches` runs a
whole split through a model. Drawing is in :mod:`aelab.figures`; a model family's own measures are its
``test_measures`` hook."""

from aelab.evaluation.batches import encode_all, per_image_mse
from aelab.evaluation.reconstruction import code_sparsity, denoising_metrics, evaluate, mean_image_mse

__all__ = ["code_sparsity", "denoising_metrics", "encode_all", "evaluate", "mean_image_mse", "per_image_mse"]
