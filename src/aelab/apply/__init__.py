"""Applying a trained autoencoder outside training: export (safetensors, ONNX), encode images to code files and
decode them back, and anomaly scores of images. Built on :func:`aelab.load` and the run folders; the CLI's
``aelab export``, ``encode``, ``decode`` and ``score`` are thin layers over these functions."""


def refuse_conditional(model, what: str) -> None:
    """Refuse ``what`` (a command) for a conditional model, which needs a class label with every image and code.

    Raises:
        AelabError: the model is conditional.
    """
    if model.conditional:
        from aelab.errors import AelabError

        raise AelabError(f"{what}: model {model.name!r} is a conditional VAE and needs the class label with every "
                         "image and code; allowed: unconditional models (generate its images with 'aelab generate')")
