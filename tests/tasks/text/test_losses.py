"""The text methods' losses computed by hand from the same networks and compared with what the
phase functions (gankit.tasks.text.phases) optimise, in float64 (the logged scalars are float32)."""

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.data.text import PAD
from gankit.models.text import one_hot
from gankit.tasks import get_task
from gankit.tasks.text.phases import STATS, latent_gan_phase, mle_phase, relgan_phase
from gankit.tasks.text.task import beta_at

CPU = torch.device("cpu")
SMALL = ["text.hidden=16", "text.emb=8", "text.d_filters=4", "text.max_len=24", "train.batch=4", "device=cpu"]
EXTRA = {"text-mle": [], "relgan": [], "latentgan": ["model.z_dim=4", "text.latent=6", "text.kind=text"]}
LINES = ["the cat sat", "a dog ran far", "cats like milk", "dogs dig holes", "the sun is warm", "rain falls down"]


def _setup(preset, tmp_path, *sets):
    (tmp_path / "corpus").mkdir(exist_ok=True)
    (tmp_path / "corpus" / "lines.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    cfg = gankit.load_config(preset, overrides=[*SMALL, *EXTRA[preset], f"data.source={tmp_path / 'corpus'}", *sets])
    task = get_task("text")
    data = task.load_data(cfg, CPU)
    parts = task.build(cfg, data, CPU)
    for net in parts.nets.values():
        net.eval()
    return cfg, parts, data.ids[:4]  # (4, L + 2)


def _logged(out):
    return dict(zip(STATS, out.double()))


def test_mle_is_the_mean_negative_log_likelihood_per_real_token(float64, tmp_path, step_state):
    _, parts, ids = _setup("text-mle", tmp_path)
    st = step_state(parts)
    out = _logged(mle_phase(st, ids, None))
    with torch.no_grad():
        logits = parts.nets["G"](ids[:, :-1])  # teacher forcing: predict ids[:, 1:]
    target = ids[:, 1:]
    assert (target == PAD).any()  # padding is left out of the mean
    nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=PAD)
    torch.testing.assert_close(st.losses["G"][0], nll, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["loss_g"], nll, rtol=1e-6, atol=0)
    torch.testing.assert_close(out["nll"], nll, rtol=1e-6, atol=0)


def test_relgan_losses_are_relativistic_on_gumbel_softmax_samples(float64, tmp_path, step_state):
    cfg, parts, ids = _setup("relgan", tmp_path)
    st = step_state(parts, seed=3)
    beta = torch.tensor(7.0)
    out = _logged(relgan_phase(st, ids, None, beta))
    G, D = parts.nets["G"], parts.nets["D"]
    with torch.no_grad():
        soft, _ = G.gumbel(ids.shape[1] - 1, beta, None, torch.Generator().manual_seed(3), len(ids))  # the same draws
        r, f = D(one_hot(ids[:, 1:], G.vocab), None), D(soft, None)
    loss_d = F.softplus(-(r - f)).mean()  # RSGAN: -log sigmoid(D(real) - D(fake)), per pair
    loss_g = F.softplus(-(f - r)).mean()
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    torch.testing.assert_close(st.losses["G_adv"][0], loss_g, rtol=1e-12, atol=0)  # the adversarial optimiser
    assert "G" not in st.losses
    torch.testing.assert_close(out["loss_d"], loss_d, rtol=1e-6, atol=0)
    torch.testing.assert_close(out["loss_g"], loss_g, rtol=1e-6, atol=0)
    # the inverse temperature: beta_max ** (t_adv / N_adv), from 1 at the switch to beta_max at the end
    n_adv = cfg.train.steps - cfg.text.pretrain_steps
    for t in (0, cfg.text.pretrain_steps, cfg.text.pretrain_steps + n_adv // 3, cfg.train.steps):
        want = cfg.text.beta_max ** (min(max(t - cfg.text.pretrain_steps, 0), n_adv) / n_adv)
        assert beta_at(cfg, t) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("gp", [10.0, 3.0])
def test_latentgan_critic_loss_is_wasserstein_plus_gp_times_the_penalty(gp, float64, tmp_path, step_state,
                                                                         weighted_sum):
    _, parts, ids = _setup("latentgan", tmp_path, f"reg.gp={gp}")
    assert parts.objective.gp == gp
    st = step_state(parts, seed=5)
    out = _logged(latent_gan_phase(st, ids[None]))  # one critic batch
    E, M, D = parts.nets["E"], parts.nets["G"].mapper, parts.nets["D"]
    gen = torch.Generator().manual_seed(5)  # the phase's draws, in its order: z, then the penalty's alpha
    real = E(ids).detach()
    fake = M(torch.randn(len(ids), parts.nets["G"].z_dim, generator=gen)).detach()
    alpha = torch.rand(len(ids), 1, generator=gen)
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    penalty = ((grad.norm(2, dim=1) - 1) ** 2).mean()
    with torch.no_grad():
        w = D(fake).mean() - D(real).mean()
        loss_g = -D(M(torch.randn(len(ids), parts.nets["G"].z_dim, generator=gen))).mean()
    weighted_sum(st.losses["D"][0], {"wasserstein": (1.0, w), "gp": (gp, penalty)})
    torch.testing.assert_close(st.losses["G_adv"][0], loss_g, rtol=1e-12, atol=0)
    torch.testing.assert_close(out["loss_d"], w + gp * penalty, rtol=1e-6, atol=0)
