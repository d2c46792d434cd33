"""Super-resolution's loss terms computed by hand from the same networks and compared with what
the phase functions (gankit.tasks.superres.phases) optimise and log, in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.tasks import get_task
from gankit.tasks.superres.phases import STATS, gan_phase, l1_phase

CPU = torch.device("cpu")


def _parts(root, *sets):
    (root / "train").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)).save(root / "train" / "a.png")
    cfg = gankit.load_config("srgan", overrides=["model.g_width=4", "model.d_width=4", "superres.g_blocks=1",
                                                 "superres.patch=16", f"data.source={root}", "device=cpu", *sets])
    task = get_task("superres")
    parts = task.build(cfg, task.load_data(cfg, CPU), CPU)
    for net in parts.nets.values():
        net.eval()  # BatchNorm frozen: the same logits in the phase and here
    return parts


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(3, 1, 4, 4, generator=g) * 2 - 1, torch.rand(3, 1, 16, 16, generator=g) * 2 - 1


@pytest.mark.parametrize("sets", [(), ("superres.l1=0.3",)])
def test_l1_phase_is_the_weighted_mean_absolute_error(sets, float64, tmp_path, step_state, weighted_sum):
    parts = _parts(tmp_path, *sets)
    st = step_state(parts)
    lr, hr = _batch()
    out = dict(zip(STATS, l1_phase(st, lr, hr)))
    with torch.no_grad():
        l1 = (parts.nets["G"](lr) - hr).abs().mean()
    torch.testing.assert_close(out["l1"], l1, rtol=1e-12, atol=0)
    assert list(st.losses) == ["G"] and out["gan_steps"] == 0
    for total in (out["loss_g"], st.losses["G"][0]):
        weighted_sum(total, {"l1": (parts.objective.l1, l1)})


@pytest.mark.parametrize("sets", [(), ("superres.l1=0.3", "superres.adv=0.2", "superres.fm=2.5")])
def test_gan_phase_is_l1_plus_relativistic_adversarial_plus_feature_matching(sets, float64, tmp_path, step_state,
                                                                             weighted_sum):
    parts = _parts(tmp_path, *sets)
    obj = parts.objective
    if not sets:  # the preset's ESRGAN weights
        assert (obj.l1, obj.adv, obj.fm, obj.loss) == (1.0, 5e-3, 1.0, "ragan")
    st = step_state(parts)
    lr, hr = _batch()
    out = dict(zip(STATS, gan_phase(st, lr, hr)))
    G, D = parts.nets["G"], parts.nets["D"]
    with torch.no_grad():
        sr = G(lr)
        r, f = D(hr), D(sr)  # (B,)
        # RaGAN: -E log sigma(r - E f) - E log(1 - sigma(f - E r)); G's with real and fake swapped
        loss_d = F.softplus(-(r - f.mean())).mean() + F.softplus(f - r.mean()).mean()
        adv = F.softplus(-(f - r.mean())).mean() + F.softplus(r - f.mean()).mean()
        f_sr, f_hr = D.features(sr), D.features(hr)
        fm = sum((a - b).abs().mean() for a, b in zip(f_sr, f_hr)) / len(f_sr)  # mean over D's K feature maps
        l1 = (sr - hr).abs().mean()
    assert len(f_sr) > 1
    for name, want in (("loss_d", loss_d), ("adv_g", adv), ("fm", fm), ("l1", l1)):
        torch.testing.assert_close(out[name], want, rtol=1e-12, atol=0, msg=name)
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    assert out["gan_steps"] == 1
    for total in (out["loss_g"], st.losses["G"][0]):
        weighted_sum(total, {"l1": (obj.l1, l1), "adv": (obj.adv, adv), "fm": (obj.fm, fm)})
