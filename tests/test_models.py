"""Models: shapes, deterministic training, cache keys, checkpoint safety."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from advsamples import models as M


@pytest.mark.parametrize("name", M.MODEL_NAMES)
def test_shapes(name: str) -> None:
    model = M.build_model(M.config_for(name))
    classes = 2 if name == "logreg_3v7" else 10
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, classes)


def test_lenet_paper_is_the_tutorial_architecture() -> None:
    model = M.build_model(M.config_for("lenet_paper"))
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,), (500, 800), (500,), (10, 500), (10,)]


def test_binary_logistic_softmax_is_the_logistic_sigmoid() -> None:
    model = M.BinaryLogistic()
    x = torch.rand(4, 1, 28, 28)
    p = torch.softmax(model(x), dim=1)[:, 1]
    assert torch.allclose(p, torch.sigmoid(model.linear(x.flatten(1))).squeeze(1))


@pytest.fixture
def small_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train on 600 images so that the LeNet trains in a second."""
    full = M.training_data

    def small(cfg: M.TrainConfig, mnist: object = None) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = full(cfg)
        return x[:600], y[:600]

    monkeypatch.setattr(M, "training_data", small)


@pytest.mark.parametrize("name", ["lenet_paper", "lenet_relu", "fc100_100_10", "logreg_3v7"])
def test_training_is_deterministic(name: str, small_data: None) -> None:
    cfg = M.config_for(name, epochs=1)
    a, _, _ = M.train(cfg, progress=False)
    b, _, _ = M.train(cfg, progress=False)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    c, _, _ = M.train(dataclasses.replace(cfg, seed=1), progress=False)
    assert any(
        not torch.equal(va, vc)
        for va, vc in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )


def test_cache_key_covers_every_field_and_the_data(monkeypatch: pytest.MonkeyPatch) -> None:
    base = M.config_for("fc10")
    changes = {
        "epochs": 2,
        "lr": 0.5,
        "batch_size": 7,
        "weight_decay": 0.3,
        "seed": 9,
        "data": "half1",
        "activation": "relu",
        "hidden": (5,),
        "optimizer": "sgd",
        "theano_init": True,
        "arch": "lenet",
        "adv_eps": 0.1,
        "extra": "some samples",
    }
    # adv_alpha matters only with the adversarial objective on: checked below
    assert set(changes) | {"adv_alpha"} == {f.name for f in dataclasses.fields(M.TrainConfig)}
    keys = {base.key()} | {dataclasses.replace(base, **{k: v}).key() for k, v in changes.items()}
    assert len(keys) == len(changes) + 1
    adversarial = dataclasses.replace(base, adv_eps=0.1)
    assert dataclasses.replace(adversarial, adv_alpha=0.3).key() != adversarial.key()
    before = base.key()
    assert M.config_for("fc10").key() == before
    monkeypatch.setattr(M._data, "data_checksum", lambda: "another data set")
    assert M.config_for("fc10").key() != before


def test_plain_keys_do_not_see_the_adversarial_fields() -> None:
    """Adding the adversarial-objective fields kept every plain configuration's key (so every
    committed checkpoint): the key is the digest of the fields that existed before them."""
    import hashlib
    import json

    for name in M.MODEL_NAMES:
        cfg = M.config_for(name, "paper")
        old = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("adv_eps", "adv_alpha", "extra")}
        payload = json.dumps({"config": old, "data": M._data.data_checksum()}, sort_keys=True)
        assert cfg.key() == hashlib.sha256(payload.encode()).hexdigest()[:16], name
        assert dataclasses.replace(cfg, adv_alpha=0.9).key() == cfg.key()
    assert "lenet_paper_fgsm" not in M.MODEL_NAMES and "lenet_paper_fgsm" in M.DEFENDED_NAMES


def test_adversarial_objective(small_data: None) -> None:
    """α = 1 weighs the adversarial term by zero: the plain model's weights exactly; α = 0.5
    trains other weights, and the FGSM term is what moves them."""
    plain = M.config_for("lenet_paper", epochs=1)
    a, _, _ = M.train(plain, progress=False)
    b, _, _ = M.train(dataclasses.replace(plain, adv_eps=0.25, adv_alpha=1.0), progress=False)
    c, _, _ = M.train(M.config_for("lenet_paper_fgsm", epochs=1), progress=False)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    assert any(
        not torch.equal(va, vc)
        for va, vc in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )
    assert M.config_for("lenet_paper_fgsm", epochs=1) == dataclasses.replace(
        plain, adv_eps=0.25, adv_alpha=0.5
    )


def test_extra_samples_are_appended_to_the_training_data(small_data: None) -> None:
    """A configuration naming extra samples trains on its data followed by them, and refuses to
    train without them (or with samples it does not name)."""
    cfg = M.config_for("lenet_paper_jsma", epochs=1, extra="recipe-1")
    assert cfg.key() != M.config_for("lenet_paper_jsma", epochs=1, extra="recipe-2").key()
    x, y = M.training_data(cfg)
    ex, ey = torch.rand(40, 1, 28, 28), torch.randint(0, 10, (40,))
    a, _, _ = M.train(cfg, progress=False, extra=(ex, ey))
    plain = M.config_for("lenet_paper", epochs=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(M, "training_data", lambda c, mnist=None: (torch.cat([x, ex]), torch.cat([y, ey])))
        b, _, _ = M.train(plain, progress=False)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    with pytest.raises(ValueError, match="extra training samples are given if and only if"):
        M.train(cfg, progress=False)
    with pytest.raises(ValueError, match="extra training samples are given if and only if"):
        M.train(plain, progress=False, extra=(ex, ey))
    with pytest.raises(ValueError, match="trains on extra samples"):
        M.config_for("lenet_paper_jsma")


def test_get_model_needs_the_extra_samples_only_to_train(ckpt_dir: Path, small_data: None) -> None:
    calls: list[int] = []

    def extra() -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        return torch.rand(10, 1, 28, 28), torch.randint(0, 10, (10,))

    with pytest.raises(ValueError, match="no extra_data was given"):
        M.get_model("lenet_paper_jsma", epochs=1, extra="r", progress=False)
    M.get_model("lenet_paper_jsma", epochs=1, extra="r", progress=False, extra_data=extra)
    M.get_model("lenet_paper_jsma", epochs=1, extra="r", progress=False)  # the checkpoint: no call
    assert calls == [1]


def test_adversarial_objective_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="adv_eps=-0.1"):
        M.config_for("lenet_paper", adv_eps=-0.1)
    with pytest.raises(ValueError, match="adv_alpha=1.5"):
        M.config_for("lenet_paper_fgsm", adv_alpha=1.5)
    with pytest.raises(ValueError, match="adv_eps=nan"):
        M.config_for("lenet_paper", adv_eps=float("nan"))


def test_config_for_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="unknown model name='lenet'"):
        M.config_for("lenet")
    with pytest.raises(ValueError, match="unknown schedule='slow'"):
        M.config_for("fc10", "slow")
    with pytest.raises(ValueError, match=r"unknown training option\(s\) \['epoch'\]"):
        M.config_for("fc10", epoch=3)
    with pytest.raises(ValueError, match="invalid training configuration"):
        M.config_for("fc10", epochs=0)


@pytest.fixture
def ckpt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADVSAMPLES_CHECKPOINTS", str(tmp_path))
    return tmp_path


def test_get_model_trains_once_then_loads(
    ckpt_dir: Path, small_data: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_train = M.train

    def counting(cfg: M.TrainConfig, **kw: object) -> tuple[torch.nn.Module, float, list[float]]:
        calls.append(cfg)
        return real_train(cfg, progress=False, monitor=kw.get("monitor"))  # type: ignore[arg-type]

    monkeypatch.setattr(M, "train", counting)
    a = M.get_model("fc10", epochs=1)
    b = M.get_model("fc10", epochs=1)
    assert len(calls) == 1 and not a.training and not b.training
    info = M.model_info("fc10", epochs=1)
    assert len(info.history) == 1 and info.history[-1] == info.test_accuracy
    assert torch.equal(a.out.weight, b.out.weight)
    M.get_model("fc10", epochs=2)
    assert len(calls) == 2  # another configuration, another checkpoint
    assert len(list(ckpt_dir.glob("fc10-*.pt"))) == 2


def test_unreadable_checkpoint_is_an_error_then_retrained(ckpt_dir: Path, small_data: None) -> None:
    M.get_model("logreg_3v7", epochs=1, progress=False)
    (path,) = ckpt_dir.glob("logreg_3v7-*.pt")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(M.CheckpointError, match=rf"(?s){path.name} is unreadable.*retrain=True"):
        M.get_model("logreg_3v7", epochs=1)
    model = M.get_model("logreg_3v7", epochs=1, retrain=True, progress=False)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 2)
    M.get_model("logreg_3v7", epochs=1)  # loads cleanly again


def test_checkpoints_load_with_weights_only(ckpt_dir: Path, small_data: None) -> None:
    """A checkpoint holding an arbitrary object is refused rather than executed."""
    M.get_model("logreg_3v7", epochs=1, progress=False)
    (path,) = ckpt_dir.glob("logreg_3v7-*.pt")
    torch.save({"state_dict": {}, "meta": "{}", "payload": Path("x")}, path)
    with pytest.raises(M.CheckpointError, match="unreadable"):
        M.get_model("logreg_3v7", epochs=1)


def test_evaluation_set_for_the_binary_model() -> None:
    y = torch.tensor([3, 7, 1, 7, 3])
    x = torch.arange(5.0).view(5, 1, 1, 1)
    xs, ys = M.evaluation_set("logreg_3v7", x, y)
    assert xs.flatten().tolist() == [0, 1, 3, 4] and ys.tolist() == [0, 1, 1, 0]
    assert M.evaluation_set("fc10", x, y)[1] is y
