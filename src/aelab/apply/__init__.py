"""Applying a trained autoencoder outside training: export (safetensors, ONNX), encode images to code files and
decode them back, and anomaly scores of images. Built on :func:`aelab.load` and the run folders; the CLI's
``aelab export``, ``encode``, ``decode`` and ``score`` are thin layers over these functions."""
