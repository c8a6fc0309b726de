"""One conformance test every model family passes, parametrized over the preset table (scikit-learn's estimator
checks are the model): build, forward shapes, loss and its unit, its declared test measures, save/load, resume of a
cut run, every analysis it claims to support (and a clear refusal of the others), the apply commands, ONNX export
where it claims it. The models are trained once per module (2 epochs on a tiny in-memory dataset) and shared."""

import math

import pytest
import torch

import aelab
from aelab.analyses import ANALYSES, analyse, why_not
from aelab.config import TrainingConfig
from aelab.data import ImageDataset, ImageSplit
from aelab.errors import AelabError, ConfigError
from aelab.models import PRESETS, build_model
from aelab.training import load_checkpoint, train

NAMES = list(PRESETS)


def _one_per_family_and_body() -> list[str]:
    """The first preset of each (family, body type, input shape): what the slow ONNX check exports."""
    from aelab.models import family_of

    seen: dict = {}
    for name in NAMES:
        key = (family_of(name).family, PRESETS[name].spec.type, PRESETS[name].input_shape, str(PRESETS[name].model))
        seen.setdefault(key, name)
    return list(seen.values())


EXPORTED = _one_per_family_and_body() + ["conv-pool"]  # and the one with max-pooling
CHEAP = {
    "latent-map": {"n": 40},
    "heatmap": {"n": 16},
    "probe": {"labels": "2"},
    "generate": {"n": 8, "quality_samples": 20},
    "traverse": {"steps": 3, "units": 2},
    "manifold": {"steps": 3},
    "interpolate": {"steps": 3},
    "failures": {"k": 2},
    "nll": {"k": 4, "images": 8},
    "anomaly-scores": {"normal_class": "0", "k": 2},
    "refine": {"images": 8, "steps": 3},
}
"""Small parameters so every analysis runs in well under a second on the tiny data."""
CFG = TrainingConfig(epochs=2, batch_size=16, log_interval=1, eval_batch_size=64)


def tiny(shape: tuple[int, int, int], n: int = 60, classes: int = 3) -> ImageDataset:
    """Bars whose height is the class, on noise: learnable in two epochs, three classes of 20 images."""
    g = torch.Generator().manual_seed(0)
    c, h, w = shape
    labels = torch.arange(n) % classes
    images = torch.randint(0, 40, (n, c, h, w), generator=g, dtype=torch.uint8)
    for i, k in enumerate(labels.tolist()):
        images[i, :, 2 + 6 * k : 7 + 6 * k, 4 : w - 4] = 220
    split = lambda a, b: ImageSplit(images[a:b], labels[a:b])  # noqa: E731
    return ImageDataset("toy", split(0, 36), split(36, 42), split(42, n), [f"bar{k}" for k in range(classes)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> (model trained 2 epochs, its data), trained on first use and shared by every check."""
    cache: dict = {}

    def get(name):
        if name not in cache:
            ds = tiny(PRESETS[name].input_shape)
            torch.manual_seed(0)
            model = build_model(name, classes=len(ds.class_names))
            train(model, ds, CFG, progress=False)
            cache[name] = (model.eval(), ds)
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
def test_build_forward_loss_and_protocol(name):
    model = build_model(name)
    x = torch.rand(2, *model.input_shape)
    out = model.train()(x, torch.tensor([0, 1]))
    assert out.reconstruction.shape == x.shape and out.reconstruction.dtype == torch.float32
    assert out.code.shape[1:] == model.code_shape
    assert out.penalty is None or out.penalty.dim() == 0
    loss = model.reconstruction_loss(out, x, torch.nn.functional.mse_loss)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    assert ("nats" in model.loss_unit("mse")) == model.nats
    assert model.code_kind in ("vector", "map", "indices") and (model.code_kind == "vector") == (
        len(model.code_shape) == 1
    )
    assert model.samplers and model.describe()
    assert model.lacks("code_2d") is None or model.code_shape != (2,)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_and_declared_test_measures(name, trained, tmp_path):
    model, ds = trained(name)
    model.save(tmp_path / "m")
    loaded = aelab.load(tmp_path / "m")
    x = ds.test.floats()[:4]
    # the same weights (the trained model is channels-last, the loaded one not: float rounding may differ)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert torch.allclose(
        loaded.reconstruct(x, ds.test.labels[:4]), model.reconstruct(x, ds.test.labels[:4]), atol=1e-6
    )
    measures = model.test_measures(ds.test)
    assert {m.key for m in model.measures} <= set(measures)
    assert all(measures[m.key] is not None for m in model.measures)


@pytest.mark.parametrize("name", NAMES)
def test_resume_of_a_cut_run_is_bit_identical(name, tmp_path):
    ds = tiny(PRESETS[name].input_shape)

    def fresh(seed):
        torch.manual_seed(seed)
        return build_model(name, classes=3)

    uncut = fresh(0)
    full = train(uncut, ds, CFG, seed=1, run_dir=tmp_path / "uncut", progress=False)

    def stop(epoch, history):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(0), ds, CFG, seed=1, run_dir=tmp_path / "cut", progress=False, on_epoch=stop)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 1
    resumed_model = fresh(7)  # another init: everything must come from the checkpoint
    resumed = train(resumed_model, ds, CFG, seed=1, run_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed.resumed_from == 1 and resumed.history.train_loss == full.history.train_loss
    for (key, a), b in zip(uncut.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", NAMES)
def test_every_analysis_it_claims_runs_and_the_others_are_refused(name, trained, tmp_path):
    model, ds = trained(name)
    ran, drawn = [], []
    for a in ANALYSES:
        reason = why_not(a, model, ds)
        if reason is None:
            outcome = analyse(model, ds, name, tmp_path, a.name, CHEAP.get(a.name, {}))
            assert outcome.figure is not None or outcome.rows, a.name
            ran.append(a.name)
            drawn += [a.name] if outcome.figure is not None else []
        else:
            with pytest.raises(ConfigError, match=f"does not apply to '{name}' \\({reason}\\); allowed for it: "):
                analyse(model, ds, name, tmp_path, a.name, CHEAP.get(a.name, {}))
    assert {"heatmap", "generate"} & set(ran), "every image model can show its codes or samples"
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(drawn)
    assert set(ran) - set(drawn) <= {"pca", "nll"}  # the two that give a table only


@pytest.mark.parametrize("name", NAMES)
def test_apply_commands_work_or_refuse(name, trained):
    from aelab.apply.codes import decode_codes, encode_images
    from aelab.apply.scores import score_images

    model, ds = trained(name)
    if model.lacks("unlabelled"):
        for use in (
            lambda: encode_images(model, ds.test.images, ["a"] * len(ds.test)),
            lambda: score_images(model, ds.test.images, ["a"] * len(ds.test), ds.val.images),
        ):
            with pytest.raises(AelabError, match="cannot be used without class labels"):
                use()
        return
    codes = encode_images(model, ds.test.images, [str(i) for i in range(len(ds.test))], bits=32)
    assert torch.equal(decode_codes(model, codes), aelab.data.to_uint8(model.reconstruct(ds.test.floats())))
    table = score_images(model, ds.test.images, [str(i) for i in range(len(ds.test))], ds.val.images)
    assert table.mse.shape == (len(ds.test),)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_onnx_export_where_it_claims_it(name, trained, tmp_path):
    """Every family on every body it has a preset on (torch's exporter takes seconds per graph: one of each)."""
    from aelab.apply.export import export_model

    model, ds = trained(name)
    if model.lacks("unlabelled"):  # needs a label with every image: refused, nothing written
        with pytest.raises(AelabError, match=f"ONNX export: model '{name}' cannot be used without class labels"):
            export_model(model, tmp_path / "x", "onnx")
        assert not (tmp_path / "x").exists()
        return
    result = export_model(model, tmp_path / "x", "onnx", ds.test.floats())
    assert max(result.max_abs_diff.values()) <= 1e-4, result.max_abs_diff
