"""The audio task's WGAN-GP step computed by hand from the same networks and compared with what
the phase function (gankit.tasks.audio.phases) optimises and logs, in float64 (SpecGAN's
networks: WaveGAN's D draws phase shifts from the same stream as the penalty); and AC-GAN's
(model.d_head: acgan) cross-entropy terms beside them."""

import wave

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.tasks import get_task
from gankit.tasks.audio.phases import STATS, wgan_phase

CPU = torch.device("cpu")


def _parts(root, *sets, classes: tuple[str, ...] = ("",)):
    """Tiny SpecGAN parts on one clip per class folder (one unlabelled clip by default)."""
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        with wave.open(str(root / c / "a.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.sin(np.arange(8000) * 0.1 * (k + 1)) * 16000).astype(np.int16).tobytes())
    cfg = gankit.load_config("specgan", overrides=["model.g_width=2", "model.d_width=2", "model.z_dim=4",
                                                   "train.batch=1", f"data.source={root}", "device=cpu", *sets])
    task = get_task("audio")
    parts = task.build(cfg, task.load_data(cfg, CPU), CPU)
    for net in parts.nets.values():
        net.eval()
    return parts


def _penalty(D, real, fake, alpha):
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = alpha real + (1 - alpha) fake, alpha per example."""
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@pytest.mark.parametrize("gp", [10.0, 2.5])
def test_critic_loss_is_wasserstein_plus_gp_times_the_penalty_and_g_loss_is_minus_the_critic(
        gp, float64, tmp_path, step_state, weighted_sum):
    parts = _parts(tmp_path / "clips", f"reg.gp={gp}")
    obj = parts.objective
    assert (obj.loss, obj.gp) == ("wasserstein", gp)
    st = step_state(parts, seed=4)
    g = torch.Generator().manual_seed(1)
    reals = [torch.rand(3, 1, 128, 128, generator=g) * 2 - 1 for _ in range(2)]  # n_critic = 2 batches
    zs = torch.randn(3, 3, 4, generator=g)  # (n_critic + 1, B, z_dim)
    out = dict(zip(STATS, wgan_phase(st, reals, zs)))
    G, D = parts.nets["G"], parts.nets["D"]
    gen = torch.Generator().manual_seed(4)  # the penalty's alphas, one draw per critic update
    assert len(st.losses["D"]) == 2 and len(st.losses["G"]) == 1
    for real, z, loss in zip(reals, zs, st.losses["D"]):
        fake = G(z).detach()
        penalty = _penalty(D, real, fake, torch.rand(len(real), 1, 1, 1, generator=gen))
        with torch.no_grad():
            w = D(fake).mean() - D(real).mean()  # critic: D(G(z)) - D(x)
        weighted_sum(loss, {"wasserstein": (1.0, w), "gp": (gp, penalty)})
    with torch.no_grad():
        fake_l = D(G(zs[-1]))  # G's own latents, the last of the draw
        real_l = D(reals[-1])
    torch.testing.assert_close(st.losses["G"][0], -fake_l.mean(), rtol=1e-12, atol=0)
    torch.testing.assert_close(out["loss_d"], st.losses["D"][-1], rtol=0, atol=0)  # the last critic update's
    torch.testing.assert_close(out["gp"], penalty, rtol=1e-12, atol=0)
    # logged Wasserstein estimate: the last critic batch's D(x) against D on G's step's fakes
    torch.testing.assert_close(out["w_dist"], real_l.mean() - fake_l.mean(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("aux_weight, aux_fakes", [(1.0, True), (0.3, True), (1.0, False)])
def test_acgan_adds_aux_weight_times_the_cross_entropies_and_keeps_the_penalty_on_the_critic(
        aux_weight, aux_fakes, float64, tmp_path, step_state, weighted_sum):
    """D: W + gp P + aux_weight (CE(aux(x), y) + CE(aux(G(z, y)), y)) (audio.aux_fakes false: the
    real clips' CE only); G: -D(G(z, y)) + aux_weight CE(aux(G(z, y)), y), each term by hand from
    the same networks (a weight 1% off fails)."""
    parts = _parts(tmp_path / "clips", "model.conditional=true", "model.d_head=acgan", f"reg.aux_weight={aux_weight}",
                   f"audio.aux_fakes={str(aux_fakes).lower()}", classes=("one", "three", "two"))
    obj = parts.objective
    assert (obj.aux_classes, obj.aux_weight, obj.aux_fakes) == (3, aux_weight, aux_fakes)
    st = step_state(parts, seed=4)
    g = torch.Generator().manual_seed(1)
    reals = [torch.rand(3, 1, 128, 128, generator=g) * 2 - 1 for _ in range(2)]
    ys = [torch.tensor([0, 2, 1]), torch.tensor([1, 1, 0])]
    zs = torch.randn(3, 3, 4, generator=g)
    out = dict(zip(STATS, wgan_phase(st, reals, zs, ys)))
    G, D = parts.nets["G"], parts.nets["D"]
    gen = torch.Generator().manual_seed(4)
    assert D.embed is None  # AC-GAN's critic is the plain one: the label reaches D through aux only
    for real, z, y, loss in zip(reals, zs, ys, st.losses["D"]):
        fake = G(z, y).detach()
        penalty = _penalty(D, real, fake, torch.rand(len(real), 1, 1, 1, generator=gen))
        with torch.no_grad():
            w = D(fake, y).mean() - D(real, y).mean()
            aux_r, aux_f = D.aux_fc(D.features(real)), D.aux_fc(D.features(fake))  # (B, 3)
            ce_r, ce_f = (-a.log_softmax(1)[torch.arange(3), y].mean() for a in (aux_r, aux_f))
        ce = ce_r + ce_f if aux_fakes else ce_r
        weighted_sum(loss, {"wasserstein": (1.0, w), "gp": (10.0, penalty), "aux": (aux_weight, ce)})
        if not aux_fakes:  # the fakes' term would show
            assert not torch.allclose(loss, loss + aux_weight * ce_f, rtol=1e-9, atol=0)
    with torch.no_grad():
        fake = G(zs[-1], ys[0])
        ce_g = F.cross_entropy(D.aux_fc(D.features(fake)), ys[0])
        weighted_sum(st.losses["G"][0], {"critic": (-1.0, D(fake).mean()), "aux": (aux_weight, ce_g)})
    torch.testing.assert_close(out["aux_d"], ce, rtol=1e-12, atol=0)  # the last critic update's
    torch.testing.assert_close(out["aux_g"], ce_g, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["gp"], penalty, rtol=1e-12, atol=0)
