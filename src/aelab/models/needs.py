"""What an analysis or a command can need from a model; a model says why it lacks one
(:meth:`aelab.models.AutoEncoder.lacks`). Imports nothing heavy, so the analysis registry reads it at start-up."""

NEEDS = {
    "unlabelled": "encoding and decoding without class labels",
    "code_units": "code values that can be set one by one",
    "vector_code": "a code vector",
    "code_2d": "a code of exactly 2 values",
    "likelihood": "a likelihood of its images to estimate (a VAE)",
    "continuous_code": "a code of real values that a search can move (not codebook indices, not a per-image top-k code)",
}
"""Need -> what it means."""
