"""Frame interpolation's loss terms computed by hand from the same networks and compared with
what the phase function (gankit.tasks.interpolate.phases) optimises and logs, in float64; and the
middle frame's prediction (residual, direct, flow-guided fusion) by its formula."""

import pytest
import torch
import torch.nn.functional as F

import gankit
from gankit.tasks import get_task
from gankit.tasks.interpolate.phases import STATS, interpolate_phase, predict

CPU = torch.device("cpu")


def _parts(*sets):
    cfg = gankit.load_config("frame-interp", overrides=["data.source=pans", "data.resolution=16", "interpolate.flow=false",
                                                        "model.g_width=4", "model.d_width=4", "device=cpu", *sets])
    task = get_task("interpolate")
    parts = task.build(cfg, task.load_data(cfg, CPU), CPU)
    for net in parts.nets.values():
        net.eval()
    return parts


def _frames(c=3):
    g = torch.Generator().manual_seed(1)
    return [torch.rand(2, c, 16, 16, generator=g) * 2 - 1 for _ in range(3)]


@pytest.mark.parametrize("sets", [(), ("interpolate.l1=30", "interpolate.gan=2")])
def test_g_loss_is_gan_times_adv_plus_l1_times_mean_abs_error_to_the_middle_frame(sets, float64, step_state,
                                                                                 weighted_sum):
    parts = _parts(*sets)
    obj = parts.objective
    if not sets:
        assert (obj.gan, obj.l1, obj.residual) == (1.0, 100.0, True)
    st = step_state(parts)
    prev, mid, nxt = _frames()
    out = dict(zip(STATS, interpolate_phase(st, prev, mid, nxt, None)))
    G, D = parts.nets["G"], parts.nets["D"]
    with torch.no_grad():
        pred = 0.5 * (prev + nxt) + G(torch.cat([prev, nxt], 1))  # residual on the neighbours' mean
        real_l = D(torch.cat([prev, mid, nxt], 1)).flatten(1)  # a triplet, along channels
        fake_l = D(torch.cat([prev, pred, nxt], 1)).flatten(1)
    loss_d = 0.5 * (F.softplus(-real_l).mean() + F.softplus(fake_l).mean())
    adv = F.softplus(-fake_l).mean()
    l1 = (pred - mid).abs().mean()
    for name, want in (("loss_d", loss_d), ("gan_g", adv), ("l1", l1)):
        torch.testing.assert_close(out[name], want, rtol=1e-12, atol=0, msg=name)
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    for total in (out["loss_g"], st.losses["G"][0]):
        weighted_sum(total, {"gan": (obj.gan, adv), "l1": (obj.l1, l1)})


def test_prediction_residual_direct_and_flow_fusion(float64):
    prev, nxt, w_prev, w_next = _frames(3) + _frames(3)[:1]
    g = torch.Generator().manual_seed(2)
    r, m = torch.rand(2, 3, 16, 16, generator=g) - 0.5, torch.rand(2, 1, 16, 16, generator=g) * 2 - 1
    seen = []

    def G(x):  # a stand-in generator: records its input, returns fixed outputs
        seen.append(x)
        return torch.cat([r, m], 1) if x.shape[1] == 12 else r

    torch.testing.assert_close(predict(G, prev, nxt, True), (prev + nxt) / 2 + r, rtol=0, atol=0)
    torch.testing.assert_close(predict(G, prev, nxt, False), r, rtol=0, atol=0)
    trust = (1 + m) / 2  # per pixel, the weight of the previous frame's warp
    want = trust * w_prev + (1 - trust) * w_next + r
    torch.testing.assert_close(predict(G, prev, nxt, True, (w_prev, w_next)), want, rtol=1e-15, atol=1e-15)
    assert torch.equal(seen[-1], torch.cat([prev, nxt, w_prev, w_next], 1))
    # G's last layer starts at zero: r = m = 0 gives the mean of the two warps
    torch.testing.assert_close(predict(lambda x: torch.zeros(2, 4, 16, 16), prev, nxt, True, (w_prev, w_next)),
                               (w_prev + w_next) / 2, rtol=0, atol=1e-15)
