"""Code refinement (``aelab refine``): each image's code searched with the decoder fixed; values by hand on a
linear decoder, the encoder's own error at step 0, the weights untouched, one search per image, and the models
whose code a search cannot move."""

import pytest
import torch
from torch import nn

from aelab.analyses.entries import BY_NAME
from aelab.analyses.registry import why_not
from aelab.config import ModelConfig
from aelab.errors import ConfigError
from aelab.evaluation.refinement import refinement
from aelab.models import build_model
from aelab.models.autoencoder import AutoEncoder

# (a, b) pixels in [0, 1]: (1, 0), (0, 1), (1, 1), (0, 0), (1, .2)
IMAGES = torch.tensor([[255, 0], [0, 255], [255, 255], [0, 0], [255, 51]], dtype=torch.uint8).view(5, 1, 1, 2)


class Split:
    """The least of a test split that refinement reads: its length and slices of its images."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, where):
        return self.images[where]


def half_sum_decoder() -> AutoEncoder:
    """Encoder: the code is the first pixel (a poor guess); decoder: half the code to each pixel. The best code of
    (a, b) is a + b (reconstruction ((a + b) / 2, (a + b) / 2)), so the search has something to find."""
    code, back = nn.Linear(2, 1, bias=False), nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        code.weight.copy_(torch.tensor([[1.0, 0.0]]))
        back.weight.copy_(torch.tensor([[0.5], [0.5]]))
    encoder = nn.Sequential(nn.Flatten(1), code)
    return AutoEncoder(encoder, nn.Sequential(back, nn.Unflatten(1, (1, 1, 2))), (1, 1, 2), (1,), "half-sum").eval()


def test_the_search_finds_the_best_code_by_hand():
    # encoder codes 1, 0, 1, 0, 1 -> reconstructions .5 z: MSE .25, .5, .25, 0, (.25 + .09) / 2 = .17; mean .234
    # best codes 1, 1, 2, 0, 1.2 -> MSE ((b - a) / 2)^2: .25, .25, 0, 0, .16; mean .132
    r = refinement(half_sum_decoder(), Split(IMAGES), images=5, steps=1000, lr=0.05, show=2)
    assert r.steps == [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    assert r.mse[0] == pytest.approx(0.234, abs=1e-6)
    assert r.mse[-1] == pytest.approx(0.132, abs=1e-4)
    assert r.images == 5 and r.originals.shape == r.encoded.shape == r.refined.shape == (2, 1, 1, 2)
    assert torch.allclose(r.refined[1].flatten(), torch.tensor([0.5, 0.5]), atol=1e-2)  # (0, 1): code 0 -> 1
    # the code moved by |best - encoder| / std: (0, 1, 1, 0, .2) / std(1, 0, 1, 0, 1) on average
    std = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0]).std()
    assert r.shift == pytest.approx(float(torch.tensor([0.0, 1.0, 1.0, 0.0, 0.2]).mean() / std), abs=1e-3)
    assert r.psnr[0] == pytest.approx(
        float((10 * torch.log10(1 / torch.tensor([0.25, 0.5, 0.25, 1e-12, 0.17]))).mean()), rel=1e-6
    )


def test_each_image_has_its_own_search_and_the_weights_stay():
    torch.manual_seed(0)
    model = build_model("linear-3").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8)
    whole = refinement(model, Split(images), images=12, steps=20, lr=0.05)
    parts = refinement(model, Split(images), images=12, steps=20, lr=0.05, batch_size=5)
    assert whole.mse == pytest.approx(parts.mse, rel=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():  # step 0 is the encoder's own reconstruction error
        x = images.float() / 255
        assert whole.mse[0] == pytest.approx(float((model.reconstruct(x) - x).pow(2).mean()), rel=1e-6)
    assert whole.mse[-1] < whole.mse[0]


def test_models_whose_code_a_search_cannot_move_are_refused():
    refine = BY_NAME["refine"]
    assert why_not(refine, build_model("vqvae-conv"), None) == "its code is a grid of codebook indices"
    topk = build_model(ModelConfig(preset="fc-64", sparsity="topk:16"))
    assert why_not(refine, topk, None) == "its code keeps only its top-k values (a search would change the others too)"
    # lifetime top-k acts in training only (an evaluated code is dense), and L1 is a penalty: both can be searched
    assert why_not(refine, build_model(ModelConfig(preset="fc-64", sparsity="lifetime:0.05")), None) is None
    assert why_not(refine, build_model(ModelConfig(preset="fc-64", sparsity="l1:0.001")), None) is None
    assert why_not(refine, build_model("conv-64"), None) is None
    with pytest.raises(ConfigError, match="model 'vqvae-conv': code refinement needs a code of real values; its "):
        refinement(build_model("vqvae-conv"), Split(IMAGES), 5, 1, 0.05)
    with pytest.raises(ConfigError, match="images: code refinement needs at least 2 images; got 1"):
        refinement(half_sum_decoder(), Split(IMAGES[:1]), 5, 1, 0.05)


def test_encode_with_refined_codes_reconstructs_better_from_a_file_of_the_same_size(tmp_path):
    from aelab.apply.codes import encode_images

    torch.manual_seed(0)
    model = build_model("linear-3").eval()
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8)
    names = [f"{i}.png" for i in range(12)]
    plain, refined = encode_images(model, images, names, 32), encode_images(model, images, names, 32, refine=20)
    assert plain.bytes_per_image == refined.bytes_per_image == 12  # 3 float32 values either way

    def error(codes):  # the float reconstruction of the stored codes (uint8 images would round the difference away)
        with torch.no_grad():
            return float((model.decode(codes.dequantized()) - images.float() / 255).pow(2).mean())

    assert error(refined) < error(plain)
    with pytest.raises(ConfigError, match="--refine: got -1; allowed: 0 \\(the encoder's code\\) or more search steps"):
        encode_images(model, images, names, 8, refine=-1)
    with pytest.raises(ConfigError, match="--refine: model 'vqvae-conv' has no code of real values to search \\(its"):
        encode_images(build_model("vqvae-conv"), images, names, 8, refine=5)
