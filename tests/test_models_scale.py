"""The convolutional archs at 128 to 1024 px: each built tiny (model.cbase small, so a 1024 px
net has a few channels at full size) takes one D and one G step with the output shapes right;
the papers' width rules; the refusals; the GPU presets resolve, build and step on CPU."""

import pytest
import torch

import gankit
from gankit.config import load_config
from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.models import build_models
from gankit.models.base import side_widths
from gankit.tasks.generate.config import ModelConfig
from gankit.tasks.generate.phases import STAT_NAMES, Batch, Objective, gan_step

B = 2
# cbase 2048, cmax 4: 4 channels up to 512 px, 2 at 1024 px
TINY = {"z_dim": 8, "w_dim": 8, "mapping_layers": 1, "cbase": 2048, "cmax": 4, "blocks": 1}

CASES = [(arch, res) for arch in ("stylegan2", "r3gan", "resnet") for res in (128, 256, 512, 1024)]
CASES += [("dcgan", 128), ("dcgan", 256)]


def _step(arch, res, **kw):
    cfg = ModelConfig(arch=arch, **{**TINY, **kw})
    shape = (3, res, res)
    G, D = build_models(cfg, shape)
    z = torch.randn(B, G.in_dim)
    with torch.no_grad():
        x = G(z)
    assert x.shape == (B, *shape) and torch.isfinite(x).all()
    assert D(x).shape == (B,)
    d0 = [p.detach().clone() for p in D.parameters()]
    g0 = [p.detach().clone() for p in G.parameters()]
    og = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.0, 0.99))
    od = torch.optim.Adam(D.parameters(), 1e-3, betas=(0.0, 0.99))
    # the generation task's own step; R1 at every size is a double backward through D
    stats = gan_step(G, D, og, od, Batch(torch.rand(B, *shape) * 2 - 1, None, z), Objective(LOSSES["ns"], r1=1.0))
    assert stats.shape == (len(STAT_NAMES),) and torch.isfinite(stats).all()
    assert any(not torch.equal(a, p) for a, p in zip(d0, D.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(g0, G.parameters()))
    return G, D


@pytest.mark.parametrize("arch, res", [c for c in CASES if c[1] < 1024])
def test_builds_and_steps(arch, res):
    _step(arch, res, d_batchnorm=False)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan2", "r3gan", "resnet"])
def test_builds_and_steps_at_1024(arch):
    G, _ = _step(arch, 1024)
    if arch == "stylegan2":
        assert G.num_ws == 18  # 4 -> 1024 px: 8 doublings, as the official 1024 px generator


def test_stylegan2_1024_forward_without_the_step():
    """The 1024 px path, forward only, in the fast suite (the step is the slow test above)."""
    G, D = build_models(ModelConfig(arch="stylegan2", **TINY), (3, 1024, 1024))
    with torch.no_grad():
        x = G(torch.randn(1, G.in_dim))
        assert x.shape == (1, 3, 1024, 1024) and D(x).shape == (1,)
    assert G.const.shape == (4, 4, 4) and G.torgbs[-1].conv.weight.shape[1] == 2  # 2048 // 1024 channels


def test_width_rules_follow_the_papers():
    sides = [4 * 2 ** i for i in range(7)]  # 4 ... 256 px
    # StyleGAN2-ADA paper256: channel_base 16384, channel_max 512
    assert side_widths(sides, 0, 0, 16384, 512) == [512, 512, 512, 512, 256, 128, 64]
    # StyleGAN2 config F at 1024: channel_base 32768
    assert side_widths([4 * 2 ** i for i in range(9)], 0, 0, 32768, 512)[-3:] == [128, 64, 32]
    # R3GAN's FFHQ-256 WidthPerStage (official train.py): 3/4 of 1024, 1024, 1024, 1024, 512, 256, 128
    assert side_widths(sides, 0, 0, 24576, 768) == [768, 768, 768, 768, 384, 192, 96]
    # no cbase: the small-image rules stay (finest width, x2 per coarser, capped)
    assert side_widths([4, 8, 16, 32], 16, 4) == [64, 64, 32, 16]
    assert side_widths([4, 8, 16, 32], 16, 1) == [16] * 4


def test_networks_take_the_cbase_widths():
    cfg = ModelConfig(arch="r3gan", z_dim=8, cbase=24576, cmax=768, blocks=1)
    G, D = build_models(cfg, (3, 256, 256))
    assert G.widths == D.widths == [768, 768, 768, 768, 384, 192, 96]
    cfg = ModelConfig(arch="stylegan2", z_dim=8, w_dim=8, mapping_layers=1, cbase=16384, cmax=512)
    G, D = build_models(cfg, (3, 256, 256))
    assert [c.conv.weight.shape[0] for c in G.convs[::2]] == [512, 512, 512, 512, 256, 128, 64]
    assert D.feat_dim == 512 and D.body[0].weight.shape[0] == 64  # fromRGB at 256 px
    cfg = ModelConfig(arch="dcgan", z_dim=8, g_width=4, d_width=4)  # the 8x cap at 256 px
    G, D = build_models(cfg, (3, 256, 256))
    assert [c.weight.shape[1] for c in G.convs] == [32, 32, 32, 16, 8, 4]


@pytest.mark.parametrize("arch, res, accepted", [
    ("stylegan2", 96, "28 or a power of two from 32 to 1024"),
    ("r3gan", 2048, "28 or a power of two from 32 to 1024"),
    ("resnet", 48, "28 or a power of two from 32 to 1024"),
    ("dcgan", 512, "28 or a power of two from 32 to 256"),
])
def test_unbuildable_sides_are_refused_in_one_line(arch, res, accepted):
    with pytest.raises(GankitError, match=f"^model.arch '{arch}' builds square images of side {accepted}; "
                                          f"the data is 3x{res}x{res} \\(set data.resolution\\)$"):
        build_models(ModelConfig(arch=arch), (3, res, res))


def test_bad_width_settings_are_refused():
    with pytest.raises(GankitError, match="model.cbase = 512 leaves no channels at 1024 px"):
        build_models(ModelConfig(arch="stylegan2", cbase=512), (3, 1024, 1024))
    with pytest.raises(GankitError, match="model.cmax = 512 caps model.cbase's rule, which is off"):
        load_config("stylegan2", overrides=["model.cmax=512"])
    with pytest.raises(GankitError, match="not of 'mlp'"):
        load_config("seed-mlp", overrides=["model.cbase=4096"])


def test_unset_resolution_picks_the_nearest_side_per_arch():
    from gankit.tasks.generate.task import GenerateTask

    for preset, want in (("dcgan", 256), ("r3gan", 512)):
        cfg = load_config(preset, overrides=["data.source=fake:1x400x400:2", "data.resolution=null"])
        data = GenerateTask().load_data(cfg, "cpu")
        assert data.shape == (1, want, want) and any("nearest" in n for n in data.notes)


@pytest.mark.parametrize("preset, arch", [("stylegan2-256", "stylegan2"), ("r3gan-ffhq256", "r3gan")])
def test_gpu_presets_resolve_build_and_step(preset, arch, tmp_path):
    cfg = load_config(preset)
    assert cfg.model.arch == arch and cfg.data.resolution == 256 and cfg.model.cbase is not None
    # their widths at 256 px, as the papers state them
    widths = side_widths([4 * 2 ** i for i in range(7)], 0, 0, cfg.model.cbase, cfg.model.cmax)
    assert widths[-1] == {"stylegan2": 64, "r3gan": 96}[arch] and max(widths) == {"stylegan2": 512, "r3gan": 768}[arch]
    over = ["data.source=fake:3x32x32:8", "data.resolution=256", "data.mirror=false", "model.cbase=512",
            "model.cmax=4", "model.z_dim=8", "model.w_dim=8", "model.mapping_layers=1", "model.blocks=1",
            "train.batch=2", "train.steps=1", "log.every=1", "log.grid_n=2", "log.progress=false", "device=cpu",
            "train.precision=fp32"]
    run = gankit.train(load_config(preset, overrides=over), tmp_path / preset)
    assert run.G.out_shape == (3, 256, 256)
