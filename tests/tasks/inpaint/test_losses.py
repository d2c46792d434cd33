"""Inpainting's loss terms computed by hand from the same networks and compared with what the
phase function (gankit.tasks.inpaint.phases) optimises and logs, in float64: the composite keeps
the known pixels, and each L1 term is a mean over its own pixels and every channel."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import gankit
from gankit.tasks import get_task
from gankit.tasks.inpaint.phases import STATS, fill, inpaint_phase

CPU = torch.device("cpu")


def _parts(root, *sets):
    (root / "train").mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)  # RGB: three channels
    Image.fromarray(img).save(root / "train" / "a.png")
    cfg = gankit.load_config("inpaint", overrides=["model.g_width=4", "model.d_width=4", "inpaint.patch=16",
                                                   f"data.source={root}", "device=cpu", *sets])
    task = get_task("inpaint")
    parts = task.build(cfg, task.load_data(cfg, CPU), CPU)
    for net in parts.nets.values():
        net.eval()
    return parts


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    mask = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
    mask[0, :, 2:7, 3:13] = True  # 50 of 256 pixels
    mask[1, :, 8:16, 0:4] = True  # 32
    return x, mask


@pytest.mark.parametrize("sets", [(), ("inpaint.l1_hole=7", "inpaint.l1_valid=3", "inpaint.gan=0.5")])
def test_g_loss_is_adversarial_plus_l1_over_the_hole_plus_l1_over_the_known_pixels(sets, float64, tmp_path,
                                                                                    step_state, weighted_sum):
    parts = _parts(tmp_path, *sets)
    obj = parts.objective
    if not sets:
        assert (obj.gan, obj.l1_hole, obj.l1_valid, obj.loss) == (1.0, 100.0, 10.0, "hinge")
    st = step_state(parts)
    x, mask = _batch()
    out = dict(zip(STATS, inpaint_phase(st, x, mask)))
    G, D = parts.nets["G"], parts.nets["D"]
    m = mask.double()
    with torch.no_grad():
        raw = G(torch.cat([x * (1 - m), m], 1))  # the hole zeroed, the mask a channel
        comp = m * raw + (1 - m) * x
        real_l, fake_l = D(torch.cat([x, m], 1)).flatten(1), D(torch.cat([comp, m], 1)).flatten(1)
    hole = mask.expand_as(x)  # (B, 3, H, W): every channel of a missing pixel
    l1_hole = (raw - x).abs()[hole].mean()  # over 3 x 82 values
    l1_valid = (raw - x).abs()[~hole].mean()  # over 3 x 430
    loss_d = F.relu(1 - real_l).mean() + F.relu(1 + fake_l).mean()  # hinge
    adv = -fake_l.mean()
    for name, want in (("l1_hole", l1_hole), ("l1_valid", l1_valid), ("loss_d", loss_d), ("adv_g", adv)):
        torch.testing.assert_close(out[name], want, rtol=1e-12, atol=0, msg=name)
    torch.testing.assert_close(st.losses["D"][0], loss_d, rtol=1e-12, atol=0)
    for total in (out["loss_g"], st.losses["G"][0]):
        weighted_sum(total, {"gan": (obj.gan, adv), "l1_hole": (obj.l1_hole, l1_hole),
                             "l1_valid": (obj.l1_valid, l1_valid)})


def test_the_composite_keeps_known_pixels_and_takes_the_hole_from_g(float64, tmp_path):
    G = _parts(tmp_path).nets["G"]
    x, mask = _batch()
    with torch.no_grad():
        raw, comp = fill(G, x, mask)
    hole = mask.expand_as(x)
    assert torch.equal(comp[~hole], x[~hole]) and torch.equal(comp[hole], raw[hole])
