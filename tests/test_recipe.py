"""The training recipe: schedules, EMA, clipping, AdamW, L1 loss, resume mid-schedule, and recipe defaults."""

import math

import pytest
import torch
from typer.testing import CliRunner

from aelab.cli import app
from aelab.config import (
    RECIPES,
    DataConfig,
    ExperimentConfig,
    MLPSpec,
    ModelConfig,
    RunConfig,
    TrainingConfig,
    dump_yaml,
    load_yaml,
)
from aelab.data import load_dataset
from aelab.experiments.resolve import resolve, run_id
from aelab.models import build_model
from aelab.training import load_checkpoint, train
from aelab.training.recipe import WeightEMA, schedule_lrs
from conftest import error_line

SMALL = ModelConfig(spec=MLPSpec(hidden=[32], code_size=8))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataConfig(name="digits"), seed=0)


def fresh(seed=0):
    torch.manual_seed(seed)
    return build_model(SMALL, (1, 8, 8))


# ---------------------------------------------------------------------------------------------- schedules
def test_constant_with_warmup_by_hand():
    # 2 epochs x 5 steps, warm-up 0.6 epochs = 3 steps: lr (t+1)/3 for t < 3, then lr
    lrs = schedule_lrs(TrainingConfig(epochs=2, lr=0.3, warmup_epochs=0.6), 5)
    assert lrs == pytest.approx([0.1, 0.2, 0.3] + [0.3] * 7, abs=1e-12)
    assert schedule_lrs(TrainingConfig(epochs=2, lr=0.3), 5) == [0.3] * 10


def test_cosine_with_warmup_by_hand():
    T, W, lr = 10, 3, 0.5
    hand = [lr * (t + 1) / W if t < W else lr * (1 + math.cos(math.pi * (t - W) / (T - W))) / 2 for t in range(T)]
    assert schedule_lrs(TrainingConfig(epochs=2, lr=lr, schedule="cosine", warmup_epochs=0.6), 5) == pytest.approx(
        hand, abs=1e-12
    )
    no_warmup = [lr * (1 + math.cos(math.pi * t / T)) / 2 for t in range(T)]
    assert schedule_lrs(TrainingConfig(epochs=2, lr=lr, schedule="cosine"), 5) == pytest.approx(no_warmup, abs=1e-12)


def test_onecycle_by_hand():
    # torch's OneCycleLR: from lr/25 up to lr at step pct*T - 1 = 2, then down to lr/25/1e4 at step T - 1 = 9
    T, lr = 10, 1.0
    start, low = lr / 25, lr / 25 / 1e4

    def anneal(a, b, pct):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * pct))

    hand = [anneal(start, lr, t / 2) if t <= 2 else anneal(lr, low, (t - 2) / 7) for t in range(T)]
    lrs = schedule_lrs(TrainingConfig(epochs=2, lr=lr, schedule="onecycle", warmup_epochs=0.6), 5)
    assert lrs == pytest.approx(hand, abs=1e-12)
    assert lrs[0] == pytest.approx(0.04) and max(lrs) == pytest.approx(1.0) and lrs[-1] == pytest.approx(4e-6)


def test_trainer_follows_the_schedule(digits):
    cfg = TrainingConfig(epochs=3, batch_size=100, optimizer="adamw", lr=0.01, schedule="cosine", warmup_epochs=1)
    steps = math.ceil(len(digits.train) / 100)
    h = train(fresh(), digits, cfg, progress=False).history
    expected = schedule_lrs(cfg, steps)
    assert h.lr == pytest.approx([expected[(e + 1) * steps - 1] for e in range(3)], abs=1e-12)
    assert h.lr[0] == pytest.approx(0.01)  # the last warm-up step reaches the peak


# -------------------------------------------------------------------------------------------------- EMA
def test_ema_by_hand():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    ema = WeightEMA([w], decay=0.9)
    hand = torch.tensor([1.0, -2.0])
    for t, value in enumerate([[3.0, 0.0], [5.0, 4.0], [-1.0, 2.0]], start=1):
        with torch.no_grad():
            w.copy_(torch.tensor(value))
        ema.update()
        d = min(0.9, (1 + t) / (10 + t))  # 2/11, 3/12, 4/13: the warm-up keeps the start from dominating
        hand = d * hand + (1 - d) * torch.tensor(value)
    assert torch.allclose(ema.shadow[0], hand, atol=1e-6)
    # worked out: [29/11, -4/11] -> [4.40909, 2.90909] -> [4/13 * 4.40909 - 9/13, 4/13 * 2.90909 + 18/13]
    assert ema.shadow[0].tolist() == pytest.approx([0.66434, 2.27972], abs=1e-5)
    ema.copy_to()
    assert torch.equal(w.detach(), ema.shadow[0])


def test_trained_model_is_the_average(digits, tmp_path):
    cfg = TrainingConfig(epochs=2, batch_size=50, ema_decay=0.99)
    model = fresh()
    train(model, digits, cfg, run_dir=tmp_path, progress=False)
    shadow = load_checkpoint(tmp_path / "checkpoint.pt")["ema"]["shadow"]
    assert len(shadow) == 1  # the flat buffer: one tensor for all parameters
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), shadow[0])
    live = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    assert not torch.equal(live["encoder.1.weight"], model.encoder[1].weight.detach())


def test_ema_with_batchnorm_recomputes_statistics(digits):
    bn = ModelConfig(spec={"type": "res", "channels": [4], "blocks": 1, "code_size": 6})
    torch.manual_seed(0)
    model = build_model(bn, (1, 8, 8))
    h = train(model, digits, TrainingConfig(epochs=3, batch_size=50, ema_decay=0.9, lr=3e-3), progress=False).history
    assert h.val_loss[-1] < h.val_loss[0]
    from aelab.evaluation import evaluate

    assert evaluate(model, digits.val)["mse"] == pytest.approx(h.val_loss[-1], rel=1e-4)


# ------------------------------------------------------------------------------ clipping, AdamW, L1, resume
def test_clipping_bounds_the_first_step(digits):
    # SGD without momentum: the first step moves the weights by lr * clipped gradient, whose norm is <= clip
    cfg = TrainingConfig(
        epochs=1, batch_size=len(digits.train), optimizer="sgd", momentum=0.0, lr=1.0, clip_grad_norm=1e-3
    )
    model = fresh()
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    train(model, digits, cfg, progress=False)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_adamw_and_l1_loss(digits):
    model = fresh()
    h = train(
        model, digits, TrainingConfig(epochs=4, optimizer="adamw", weight_decay=0.01, loss="l1"), progress=False
    ).history
    assert h.train_loss[-1] < h.train_loss[0]
    x = digits.val.floats()
    model.eval()
    assert h.val_loss[-1] == pytest.approx((model.reconstruct(x) - x).abs().mean().item(), rel=1e-5)


def test_a_named_recipe_fills_the_unset_fields_in_the_low_level_api(digits):
    cfg = TrainingConfig(recipe="aelab", epochs=2, lr=1e-2).with_recipe()
    assert (cfg.optimizer, cfg.schedule, cfg.batch_size, cfg.clip_grad_norm, cfg.warmup_epochs) == (
        "adamw",
        "cosine",
        128,
        1.0,
        0.5,
    )
    assert (cfg.epochs, cfg.lr) == (2, 1e-2)  # set explicitly: they win
    assert TrainingConfig().with_recipe() == TrainingConfig()
    assert TrainingConfig(recipe="tutorial").with_recipe().optimizer == "adam"
    resolved = resolve(ExperimentConfig(models=["res-64", "conv-64"]), {"training.recipe": "aelab"})
    assert all(r.config.training.with_recipe() == r.config.training for r in resolved)  # what runs get: unchanged
    named = train(fresh(), digits, TrainingConfig(recipe="aelab", epochs=2), progress=False).history
    spelled = train(fresh(), digits, TrainingConfig(**{**RECIPES["aelab"], "epochs": 2}), progress=False).history
    assert named.train_loss == spelled.train_loss and named.lr == spelled.lr
    assert named.lr[0] != TrainingConfig().lr  # warm-up + cosine, not the tutorial's constant 1e-3


def test_resume_mid_schedule_is_bit_identical(digits, tmp_path):
    cfg = TrainingConfig(
        epochs=4,
        batch_size=40,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=1e-4,
        schedule="onecycle",
        warmup_epochs=1,
        clip_grad_norm=0.5,
        ema_decay=0.95,
    )
    uncut = fresh()
    full = train(uncut, digits, cfg, seed=3, run_dir=tmp_path / "uncut", progress=False)

    def stop(epoch, history):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh(), digits, cfg, seed=3, run_dir=tmp_path / "cut", progress=False, on_epoch=stop)
    state = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 2 * math.ceil(len(digits.train) / 40)
    resumed_model = fresh(seed=99)
    resumed = train(resumed_model, digits, cfg, seed=3, run_dir=tmp_path / "cut", resume=True, progress=False)
    assert resumed.resumed_from == 2
    assert resumed.history.train_loss == full.history.train_loss
    assert resumed.history.val_loss == full.history.val_loss
    assert resumed.history.lr == full.history.lr
    for pa, pb in zip(uncut.parameters(), resumed_model.parameters()):
        assert torch.equal(pa, pb)


# ------------------------------------------------------------------------------------------------ recipes
def test_presets_get_their_recipe_and_explicit_fields_win():
    runs = resolve(ExperimentConfig(models=["res-64", "conv-64", {"spec": {"type": "res", "code_size": 8}}]))
    res, conv, spec = (r.config.training for r in runs)
    for key, value in RECIPES["aelab"].items():
        assert getattr(res, key) == value
    assert (conv.optimizer, conv.schedule, conv.lr, conv.batch_size, conv.epochs) == ("adam", "constant", 1e-3, 64, 50)
    assert spec == conv  # specs get the tutorial recipe unless they ask
    runs = resolve(
        ExperimentConfig(models=["res-64"], training=TrainingConfig(epochs=3)), {"training.optimizer": "adam"}
    )
    t = runs[0].config.training
    assert (t.epochs, t.optimizer, t.schedule, t.lr) == (3, "adam", "cosine", RECIPES["aelab"]["lr"])
    asked = resolve(ExperimentConfig(models=["conv-64"]), {"training.recipe": "aelab"})[0].config.training
    assert (asked.optimizer, asked.schedule) == ("adamw", "cosine")


def test_written_experiment_finds_the_same_runs(tmp_path):
    experiment = ExperimentConfig(models=["res-16", "linear-3"], training=TrainingConfig(epochs=2))
    path = tmp_path / "e.yaml"
    path.write_text(dump_yaml(experiment))
    assert "optimizer" not in path.read_text()  # only the fields set explicitly
    again = load_yaml(path, ExperimentConfig)
    assert [r.id for r in resolve(again)] == [r.id for r in resolve(experiment)]


def test_tutorial_run_ids_did_not_change():
    # ids of the previous release (commit a0bb285): finished tutorial runs are found again, not re-trained
    assert run_id(RunConfig()) == "c870e7d6a672"
    assert run_id(RunConfig(model=ModelConfig(preset="conv-64"), training=TrainingConfig(epochs=3))) == "778457d8b8a5"


def test_run_ids_and_names_of_every_family_did_not_change_across_the_restructure():
    """ids and names computed with the code before the model protocol (commit 4e5da39): finished runs of every
    family are found again after the config, models and engine moved."""
    from aelab.experiments.resolve import resolve

    e = ExperimentConfig(
        models=[
            "res-64",
            "vae-conv-16",
            "cvae-conv-16",
            "vqvae-conv",
            {"preset": "vae-2", "variational": {"beta": 4}},
            {"preset": "fc-64", "sparsity": "topk:8", "tied": True},
            {"spec": {"type": "conv", "layers": [{"channels": 8, "stride": 2, "padding": 1}]}},
        ],
        data={"name": "folder", "data_dir": "/data/icons", "resize": [28, 28]},
    )
    assert [(r.name, r.id) for r in resolve(e)] == [
        ("res-64", "82c20be82832"),
        ("vae-conv-16", "c922a53977e3"),
        ("cvae-conv-16", "a083a4ab5fcb"),
        ("vqvae-conv", "83af208022b3"),
        ("vae-2 beta:4", "dbddb4cfecc3"),
        ("fc-64 topk:8 tied", "09b15a1f090a"),
        ("conv", "9d87b187f8f4"),
    ]


runner = CliRunner()


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--warmup", "60"],
            "training: warmup_epochs: got 60 but the training lasts 50 epochs; allowed: 0 <= warmup_epochs < epochs",
        ),
        (
            ["--model", "res-3", "--warmup", f"{RECIPES['aelab']['epochs']}"],
            f"but the training lasts {RECIPES['aelab']['epochs']} epochs",
        ),
        (["--clip", "-1"], "training.clip_grad_norm: Input should be greater than 0 (got -1.0)"),
        (
            ["--set", "training.schedule=step"],
            "training.schedule: got 'step'; allowed: 'constant', 'cosine' or 'onecycle'",
        ),
        (["--ema", "1"], "training.ema_decay: Input should be less than 1 (got 1.0)"),
        (["--set", "training.recipe=fast"], "training.recipe: got 'fast'; allowed: 'tutorial' or 'aelab'"),
    ],
)
def test_bad_recipe_input(args, expected, tmp_path):
    result = runner.invoke(app, ["train", *args, "--runs-dir", str(tmp_path / "runs"), "--no-progress"])
    assert result.exit_code == 2
    assert expected in error_line(result)
    assert not (tmp_path / "runs").exists()
