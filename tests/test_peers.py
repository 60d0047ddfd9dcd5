"""The libraries beside ours (advsamples.peers): the pins, the advertorch shim, the adapters,
and the rules that explain each library's JSMA, pinned on small hand-made models."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from advsamples import peers
from advsamples.attacks.jsma import jsma_budget, jsma_trace
from advsamples.experiments import libraries as L

ROOT = Path(__file__).resolve().parents[1]
INSTALLED = all(peers.versions().values())
needs_peers = pytest.mark.skipif(not INSTALLED, reason="the optional libraries are not installed")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements-peers.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_every_library_is_pinned_exactly() -> None:
    pins = _lock()
    for dist in peers.DISTRIBUTIONS.values():
        assert re.fullmatch(r"\d+(\.\d+)+", pins[dist.lower()]), dist


@needs_peers
def test_installed_versions_are_the_pins() -> None:
    pins = _lock()
    for lib, version in peers.versions().items():
        assert version == pins[peers.DISTRIBUTIONS[lib].lower()], lib


def test_zero_gradients_shim_zeroes_in_place() -> None:
    a = torch.ones(3, requires_grad=True)
    (a * 2).sum().backward()
    b = torch.ones(2, requires_grad=True)
    peers._zero_gradients([a, b])  # b has no grad: left alone
    assert a.grad is not None and torch.equal(a.grad, torch.zeros(3)) and b.grad is None


@needs_peers
def test_advertorch_imports_on_todays_torch() -> None:
    import sys

    at = peers.import_advertorch()
    assert hasattr(at, "JacobianSaliencyMapAttack")
    assert sys.modules["torch.autograd.gradcheck"].zero_gradients is peers._zero_gradients


def test_craft_rejects_what_is_not_there() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="attack='deepfool'"):
        peers.craft("deepfool", "ours", net, x, y)
    with pytest.raises(ValueError, match="library='foolbox' has no jsma"):
        peers.craft("jsma", "foolbox", net, x, y, theta=1.0, gamma=0.5)


def _net(seed: int = 0, pixels: int = 16, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(pixels, 12), nn.Tanh(), nn.Linear(12, classes))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def _digits(n: int = 12, pixels: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, pixels // 4, generator=g)
    x[x > 0.8] = 1.0  # saturated pixels, as MNIST has
    x[x < 0.1] = 0.0
    y = torch.randint(0, 4, (n,), generator=g)
    return x, y, (y + 1) % 4


@needs_peers
@pytest.mark.parametrize("lib", peers.ATTACK_LIBRARIES["fgsm"][1:])
def test_every_fgsm_is_ours_bit_for_bit(lib: str) -> None:
    net, (x, y, _) = _net(), _digits()
    ours = peers.craft("fgsm", "ours", net, x, y, eps=0.1)
    assert torch.equal(peers.craft("fgsm", lib, net, x, y, eps=0.1), ours)


@needs_peers
@pytest.mark.parametrize("lib", peers.ATTACK_LIBRARIES["pgd"][1:])
def test_every_pgd_is_ours_to_rounding(lib: str) -> None:
    net, (x, y, _) = _net(), _digits()
    kw = {"eps": 0.1, "steps": 5, "alpha": 0.05}
    ours = peers.craft("pgd", "ours", net, x, y, **kw)
    theirs = peers.craft("pgd", lib, net, x, y, **kw)
    assert (theirs - ours).abs().max() <= 1e-6
    assert ((theirs - x).abs() <= 0.1 + 1e-6).all()


@needs_peers
@pytest.mark.parametrize("theta", [1.0, -1.0])
def test_advertorch_jsma_is_ours_with_every_pixel_in_the_domain(theta: float) -> None:
    net, (x, _, t) = _net(), _digits()
    theirs = peers.craft("jsma", "advertorch", net, x, t, theta=theta, gamma=0.5)
    assert torch.equal(theirs, jsma_trace(net, x, t, theta=theta, gamma=0.5, domain="all").x_adv)


@needs_peers
@pytest.mark.parametrize("theta", [1.0, -1.0])
def test_torchattacks_jsma_is_ours_with_its_budget_and_domain(theta: float) -> None:
    net, (x, _, t) = _net(), _digits()
    theirs = peers.craft("jsma", "torchattacks", net, x, t, theta=theta, gamma=0.3)
    assert torch.equal(theirs, L.torchattacks_rule(net, x, t, theta, 0.3))
    plain = jsma_trace(
        net, x, t, theta=theta, gamma=L.torchattacks_gamma(16, 0.3), domain=L.torchattacks_domain(x, theta)
    )
    assert not torch.equal(theirs, plain.x_adv)  # the pixel-0 rule is needed here: the test can fail


@needs_peers
def test_art_jsma_picks_the_top_two_of_the_target_gradient() -> None:
    net, (x, _, _) = _net(), _digits()
    with torch.no_grad():
        t = (net(x).argmax(1) + 1) % 4  # not the class it is in: ART's first iteration moves a pair
    out = L.experiment_chunk(L.Params(libraries=["art"]), net, x, t, ["art"])
    assert out["art_first_top2"].mean() == 1.0
    assert math.isnan(out["advertorch_all_pos"][0])


def test_torchattacks_budget_rounds_up() -> None:
    for n, g in [(784, 0.145), (16, 0.3), (100, 0.1)]:
        assert jsma_budget(n, L.torchattacks_gamma(n, g)) == math.ceil(n * g / 2)
    assert 2 * jsma_budget(784, 0.145) == 112 and 2 * math.ceil(784 * 0.145 / 2) == 114


def test_a_domain_tensor_is_the_initial_search_domain() -> None:
    net, (x, _, t) = _net(), _digits()
    movable = x.reshape(len(x), -1) < 1.0
    a = jsma_trace(net, x, t, gamma=0.5)
    b = jsma_trace(net, x, t, gamma=0.5, domain=movable)
    assert torch.equal(a.x_adv, b.x_adv) and torch.equal(a.iterations, b.iterations)
    none = torch.zeros_like(movable)
    assert torch.equal(jsma_trace(net, x, t, gamma=0.5, domain=none).x_adv, x)  # nothing to pick
    with pytest.raises(ValueError, match="domain tensor must be bool"):
        jsma_trace(net, x, t, domain=movable.float())
    with pytest.raises(ValueError, match="domain tensor"):
        jsma_trace(net, x, t, domain=movable[:3])
    with pytest.raises(ValueError, match="domain must be"):
        jsma_trace(net, x, t, domain="some")  # type: ignore[arg-type]


def test_libraries_params_are_validated() -> None:
    with pytest.raises(ValueError, match="n_slow"):
        L.Params(n_digits=4, n_slow=5)
    with pytest.raises(ValueError, match="libraries"):
        L.Params(libraries=["keras"])
    with pytest.raises(ValueError, match="models"):
        L.Params(models=["vgg"])


def test_cells_put_ours_first_and_only_where_a_library_ships_the_attack() -> None:
    cs = L.cells(L.Params(libraries=["advertorch", "foolbox"]))
    assert cs[0] == ("fgsm", "ours")
    assert ("jsma", "foolbox") not in cs and ("jsma", "advertorch") in cs
    assert ("lbfgs_untargeted", "ours") not in cs and ("lbfgs_untargeted", "advertorch") in cs
    assert [a for a, _ in cs] == sorted((a for a, _ in cs), key=list(L.ATTACKS).index)


@needs_peers
def test_attack_chunk_compares_with_ours() -> None:
    net, (x, y, _) = _net(), _digits(4)
    out = L.attack_chunk(L.Params(), "fgsm", net, x, y)
    assert out["ours_same"].tolist() == [1.0] * 4 and out["cleverhans_same"].tolist() == [1.0] * 4
    assert (out["ours_distance"] <= 0.25 + 1e-6).all() and (out["art_maxdiff"] == 0).all()


def test_the_peers_table_prints_every_row_and_both_bounds() -> None:
    from advsamples.bench import format_bench_peers

    row = {"attacks": 20, "attacks_per_s": 50.0, "ours_over": 1.0, "peak_rss_mib": 600.0, "attack_mib": 80.0}
    d = {
        "rows": [row | {"impl": "ours", "same": 1.0}, row | {"impl": "art", "ours_over": 4.0, "same": 0.9}],
        "bound": {"rows_per_s": 1000.0, "ratio": 1.4, "own_ratio": 1.1, "threads": 1, "model": "lenet_paper"},
    }
    text = format_bench_peers(d | {"bound": d["bound"] | {"runs": 3}})
    assert "20 attacks on lenet_paper, threads=1" in text
    assert "art" in text and "90%" in text
    assert "ours (best of 3 runs) takes 1.40x its network-only time at full batches" in text
    assert "1.10x at its own batch sizes" in text
    old = {**d, "bound": {k: v for k, v in d["bound"].items() if k != "own_ratio"}}
    assert "own batch" not in format_bench_peers(old) and "best of" not in format_bench_peers(old)
