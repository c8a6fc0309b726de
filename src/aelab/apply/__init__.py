"""Applying a trained autoencoder outside training: export (safetensors, ONNX), encode images to code files and
decode them back, and anomaly scores of images. Built on :func:`aelab.load` and the run folders; the CLI's
``aelab export``, ``encode``, ``decode`` and ``score`` are thin layers over these functions."""


def refuse_unlabelled(model, what: str) -> None:
    """Refuse ``what`` (a command) for a model that cannot encode and decode without class labels (a conditional
    VAE: every image and code needs its label).

    Raises:
        AelabError: the model lacks it (the model says why).
    """
    reason = model.lacks("unlabelled")
    if reason is not None:
        from aelab.errors import AelabError

        raise AelabError(
            f"{what}: model {model.name!r} cannot be used without class labels ({reason}); allowed: "
            "unconditional models (generate its images with 'aelab generate')"
        )
