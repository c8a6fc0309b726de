import math
import warnings

import pytest
import torch

from aelab.config import DataConfig, MLPSpec, ModelConfig, TrainingConfig
from aelab.data import load_dataset
from aelab.errors import AelabError, ConfigError, TrainingDivergedError
from aelab.evaluation import evaluate, mean_image_mse
from aelab.models import build_model
from aelab.training import load_checkpoint, save_checkpoint, train

SMALL = ModelConfig(spec=MLPSpec(hidden=[32], code_size=8))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"), seed=0)


def fresh(config=SMALL, seed=0, shape=(1, 8, 8)):
    torch.manual_seed(seed)
    return build_model(config, shape)


def test_loss_goes_down_and_beats_mean_image(digits):
    model = fresh()
    result = train(model, digits, TrainingConfig(epochs=15, batch_size=32, log_interval=5), progress=False)
    h = result.history
    assert len(h.train_loss) == 15 and len(h.val_loss) == 15
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    test = evaluate(model, digits.test)
    assert test["mse"] < 0.5 * mean_image_mse(digits.train, digits.test)
    assert sorted(h.snapshots) == [5, 10, 15]
    assert h.snapshots[5].shape == (8, 1, 8, 8) and h.snapshots[5].dtype == torch.uint8
    assert torch.equal(h.snapshot_originals, digits.test.images[:8])
    assert result.images_per_second > 0


def test_same_seed_same_weights(digits):
    cfg = TrainingConfig(epochs=2, batch_size=50)
    a, b = fresh(), fresh()
    train(a, digits, cfg, seed=7, progress=False)
    train(b, digits, cfg, seed=7, progress=False)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_resume_ends_like_an_uncut_run(digits, tmp_path):
    cfg = TrainingConfig(epochs=4, batch_size=40, log_interval=2)
    uncut = fresh()
    full = train(uncut, digits, cfg, seed=3, run_dir=tmp_path / "uncut", progress=False)
    cut = fresh()
    with pytest.raises(KeyboardInterrupt):

        def stop(epoch, history):
            if epoch == 2:
                raise KeyboardInterrupt

        train(cut, digits, cfg, seed=3, run_dir=tmp_path / "cut", progress=False, on_epoch=stop)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 2
    resumed_model = fresh(seed=99)  # different init: everything must come from the checkpoint
    resumed = train(resumed_model, digits, cfg, seed=3, run_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed.resumed_from == 2
    assert resumed.history.train_loss == full.history.train_loss
    for pa, pb in zip(uncut.parameters(), resumed_model.parameters()):
        assert torch.equal(pa, pb)


def test_resume_refuses_another_config(digits, tmp_path):
    train(fresh(), digits, TrainingConfig(epochs=1), run_dir=tmp_path, progress=False)
    with pytest.raises(AelabError, match="cannot resume"):
        train(fresh(), digits, TrainingConfig(epochs=2, lr=0.1), run_dir=tmp_path, resume=True, progress=False)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(digits, tmp_path):
    model = fresh()

    def poison(epoch, history):
        if epoch == 2:
            with torch.no_grad():
                model.encoder[1].weight.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError) as exc:
        train(model, digits, TrainingConfig(epochs=5), run_dir=tmp_path, progress=False, on_epoch=poison)
    assert "diverged at epoch 3" in str(exc.value) and "epoch 2" in str(exc.value)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_checkpoint_is_atomic_and_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"a": torch.arange(3)}, path)
    save_checkpoint({"a": torch.arange(4)}, path)
    assert torch.equal(load_checkpoint(path)["a"], torch.arange(4))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp files left
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(AelabError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")


@pytest.mark.parametrize("opt, loss", [("sgd", "mse_sum"), ("adam", "bce")])
def test_other_optimizers_and_losses(digits, opt, loss):
    model = fresh()
    h = train(
        model,
        digits,
        TrainingConfig(epochs=6, optimizer=opt, loss=loss, lr=0.01 if opt == "sgd" else 1e-3),
        progress=False,
    ).history
    assert h.train_loss[-1] < h.train_loss[0]
    if loss == "mse_sum":  # summed per image = 64 pixels x per-pixel MSE
        assert h.train_loss[0] > 1.0


def test_bce_refused_without_sigmoid_output(digits):
    leaky = ModelConfig(spec=MLPSpec(hidden=[], code_size=4, output_activation="leaky_relu"))
    with pytest.raises(ConfigError, match="'bce' needs outputs in \\[0, 1\\]"):
        train(fresh(leaky), digits, TrainingConfig(epochs=1, loss="bce"), progress=False)


def test_cuda_refused_without_gpu(digits):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        train(fresh(), digits, TrainingConfig(epochs=1, device="cuda"), progress=False)


def test_conv_model_trains_on_conv_path(digits):
    from aelab.config import ConvLayerSpec, ConvSpec

    conv = ModelConfig(spec=ConvSpec(layers=[ConvLayerSpec(channels=8, kernel=3, stride=2, padding=1)]))
    model = fresh(conv)
    h = train(model, digits, TrainingConfig(epochs=4, batch_size=32), progress=False).history
    assert h.train_loss[-1] < h.train_loss[0]


def test_bf16_autocast_trains_in_bfloat16_with_fp32_weights(digits):
    """precision=bf16 autocasts the forward pass on the device that trains (here the CPU): the convolutions'
    outputs are bfloat16, the weights and their optimizer stay fp32, and training ends near the fp32 run."""
    from aelab.config import ConvLayerSpec, ConvSpec

    conv = ModelConfig(spec=ConvSpec(layers=[ConvLayerSpec(channels=8, kernel=3, stride=2, padding=1)]))
    losses, dtypes = {}, {}
    for precision in ("fp32", "bf16"):
        model = fresh(conv)
        seen: set[torch.dtype] = set()
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_hook(lambda _m, _i, out, seen=seen: seen.add(out.dtype))
        cfg = TrainingConfig(epochs=4, batch_size=32, precision=precision, device="cpu")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses[precision] = train(model, digits, cfg, progress=False).history.train_loss
        slow_cpu = precision == "bf16" and not torch.cpu._is_amx_tile_supported()
        assert [str(w.message) for w in caught if "AMX" in str(w.message)] == (
            ["bf16 autocast on a CPU without AMX: measured slower than fp32 (BENCHMARKS.md)"] if slow_cpu else []
        )
        dtypes[precision] = seen
        assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert dtypes == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}
    assert losses["bf16"][-1] < losses["bf16"][0]
    assert abs(losses["bf16"][-1] - losses["fp32"][-1]) < 0.05 * losses["fp32"][-1]


def test_metrics_by_hand():
    from aelab.data import ImageSplit
    from aelab.models import AutoEncoder

    class Const(torch.nn.Module):
        def forward(self, x):
            return torch.full_like(x, 0.5)

    model = AutoEncoder(torch.nn.Identity(), Const(), (1, 11, 11), (1, 11, 11))
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1)))
    images = torch.zeros(4, 1, 11, 11, dtype=torch.uint8)
    images[2:] = 255
    m = evaluate(model, ImageSplit(images, torch.zeros(4, dtype=torch.long)), batch_size=3)
    assert m["mse"] == pytest.approx(0.25)
    assert m["psnr"] == pytest.approx(10 * math.log10(1 / 0.25), rel=1e-5)
    # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), the contrast term is C2 / C2 = 1
    c1 = 0.01**2
    by_hand = [c1 / (0.25 + c1)] * 2 + [(1 + c1) / (1.25 + c1)] * 2
    assert m["ssim"] == pytest.approx(sum(by_hand) / 4, rel=1e-5)
    assert m["images"] == 4


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 12, 16), (2, 3, 32, 32)])
def test_ssim_matches_the_reference_implementation(shape):
    """Wang et al.'s SSIM as scikit-image computes it (Gaussian window 11, valid positions, population statistics).

    Images under 11 pixels use a smaller window, where implementations differ (scikit-image truncates an 11-wide one).
    """
    from skimage.metrics import structural_similarity

    from aelab.evaluation.reconstruction import ssim_kernel, ssim_per_image

    g = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=g)
    y = (x + 0.2 * torch.randn(shape, generator=g)).clamp(0, 1)
    got = ssim_per_image(y, x)
    k = ssim_kernel(*shape[-2:])
    for i in range(shape[0]):
        want = structural_similarity(
            x[i].double().numpy(),
            y[i].double().numpy(),
            channel_axis=0,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            win_size=k,
        )
        assert float(got[i]) == pytest.approx(want, abs=2e-5)
    assert ssim_per_image(x, x).tolist() == pytest.approx([1.0] * shape[0], abs=1e-6)


def test_compile_is_used_with_a_penalty(digits, monkeypatch):
    """--compile with an L1 penalty: every training step goes through the compiled callable."""
    from aelab.config import ModelConfig

    calls = []

    def fake_compile(model, **kwargs):
        def step(x, y=None, **kwargs):
            out = model(x, y)
            calls.append(out.penalty is not None)
            return out

        return step

    monkeypatch.setattr(torch, "compile", fake_compile)
    torch.manual_seed(0)
    model = build_model(ModelConfig(spec=MLPSpec(hidden=[], code_size=8), sparsity="l1:0.01"), digits.shape)
    result = train(model, digits, TrainingConfig(epochs=2, batch_size=256, compile=True), progress=False)
    steps = math.ceil(len(digits.train) / 256)
    assert calls == [True] * (2 * steps)
    assert all(p > 0 for p in result.history.train_penalty)
