import json

from gankit.bench import run_bench
from gankit.cli import main


def test_bench_reports_both_loops(capsys):
    r = run_bench("seed-mlp", "cpu", batch=16, seconds=0.3, data="fake:1x28x28:256")
    assert set(r) == {"preset", "device", "batch", "reference", "gankit", "ratio"}
    for side in ("reference", "gankit"):
        assert set(r[side]) == {"steps_per_s", "images_per_s", "peak_mem_bytes"}
        assert r[side]["steps_per_s"] > 0 and abs(r[side]["images_per_s"] - 16 * r[side]["steps_per_s"]) < 16
    assert r["ratio"] == round(r["gankit"]["steps_per_s"] / r["reference"]["steps_per_s"], 2)
    assert main(["bench", "--preset", "dcgan", "--device", "cpu", "--batch", "8", "--seconds", "0.3",
                 "--data", "fake:1x28x28:64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "dcgan" and out["batch"] == 8
