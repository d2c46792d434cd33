import json

from gankit.bench import run_bench
from gankit.cli import main


def test_bench_reports_the_reference_and_both_precisions(capsys):
    r = run_bench("seed-mlp", "cpu", batch=16, seconds=0.6, data="fake:1x28x28:256", rounds=3)
    assert set(r) == {"preset", "device", "batch", "precision", "auto", "reference", "gankit", "gankit_fp32",
                      "gankit_bf16", "ratio", "ratio_fp32", "ratio_bf16", "ratio_rounds", "step_mode"}
    assert r["step_mode"] == "step: eager (CUDA graphs need a CUDA device)"
    for side in ("reference", "gankit_fp32", "gankit_bf16"):
        assert set(r[side]) == {"steps_per_s", "images_per_s", "peak_mem_bytes"}
        assert r[side]["steps_per_s"] > 0 and abs(r[side]["images_per_s"] - 16 * r[side]["steps_per_s"]) < 16
    # The headline is the precision auto picks (what a run of the preset trains in).
    assert r["precision"] == r["auto"]["choice"] and r["gankit"] == r[f"gankit_{r['precision']}"]
    assert r["ratio"] == r[f"ratio_{r['precision']}"]
    # A ratio is the median of the alternating rounds' ratios.
    assert len(r["ratio_rounds"]) == 3 and all(x > 0 for x in r["ratio_rounds"])
    assert r["ratio"] == sorted(r["ratio_rounds"])[1]
    assert main(["bench", "--preset", "dcgan", "--device", "cpu", "--batch", "8", "--seconds", "0.3",
                 "--data", "fake:1x28x28:64", "--precision", "bf16", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "dcgan" and out["batch"] == 8 and out["precision"] == "bf16"
    assert out["ratio"] == out["ratio_bf16"] and out["auto"]["choice"] in ("fp32", "bf16")
    assert main(["bench", "--preset", "seed-mlp", "--device", "cpu", "--batch", "8", "--seconds", "0.3",
                 "--data", "fake:1x28x28:64", "--rounds", "1"]) == 0
    text = capsys.readouterr().out
    assert "train.precision auto picks" in text and "gankit fp32" in text and "gankit bf16" in text


def test_bf16_forwards_stay_close_to_fp32():
    """The bf16 path computes the same function as the fp32 eager path, to bf16 tolerance."""
    import torch

    from gankit.tasks.generate.config import ModelConfig
    from gankit.losses import LOSSES
    from gankit.models import build_models
    from gankit.tasks.generate.phases import Batch, Objective, gan_step

    results = []
    for bf16 in (False, True):
        torch.manual_seed(0)
        G, D = build_models(ModelConfig(z_dim=8, g_hidden=(32,), d_hidden=(32,), d_dropout=0.0), (1, 8, 8))
        og, od = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
        g = torch.Generator().manual_seed(1)
        stats = []
        for _ in range(3):
            b = Batch(torch.rand(16, 1, 8, 8, generator=g) * 2 - 1, None, torch.randn(16, 8, generator=g))
            stats.append(gan_step(G, D, og, od, b, Objective(LOSSES["ns"], bf16=bf16)))
        results.append((torch.cat([p.detach().flatten() for p in G.parameters()]), torch.stack(stats)))
    (p32, s32), (p16, s16) = results
    assert not torch.equal(p32, p16)  # bf16 really ran
    # Adam moves each weight by about lr per step whatever the gradient's size, so a weight whose
    # tiny gradient changes sign under bf16 can differ by up to 2 lr per step; almost none do.
    torch.testing.assert_close(p16, p32, atol=6e-3, rtol=0)
    assert (p16 - p32).abs().mean() < 1e-4
    torch.testing.assert_close(s16[:, 0], s32[:, 0], atol=2e-2, rtol=2e-2)  # D loss
