"""gankit.tasks.restore_common: the restoration tasks' grid writer and eval row."""

import pytest
import torch

from gankit.tasks import restore_common
from gankit.tasks.restore_common import run_row, triptych


def test_triptych_rows_are_before_output_truth_with_G_in_eval_mode(monkeypatch, tmp_path):
    G = torch.nn.Linear(1, 1)
    before = torch.full((2, 1, 3, 3), 10, dtype=torch.uint8)
    truth = torch.stack([torch.full((1, 3, 3), v, dtype=torch.uint8) for v in (200, 201)])
    modes = []

    def restore():
        modes.append(G.training)
        return truth - 100  # (2, 1, 3, 3): 100, 101

    saved = {}
    monkeypatch.setattr(restore_common.viz, "save_grid",
                        lambda cells, path, nrow: saved.update(cells=cells, path=path, nrow=nrow) or path)
    write = triptych(G, restore, before, truth)  # grey uint8: drawn as RGB
    assert write(7, tmp_path / "g.png") == tmp_path / "g.png"
    assert modes == [False] and G.training  # made in eval mode, left in training mode
    cells = saved["cells"]
    assert cells.shape == (6, 3, 3, 3) and saved["nrow"] == 6
    assert cells[:, 0, 0, 0].tolist() == [10, 100, 200, 10, 101, 201]


RES = {"a": {"gankit": {"psnr": 20.0, "ssim": 0.5}, "input": {"psnr": 1.0, "ssim": 0.1}, "area": 0.25},
       "b": {"gankit": {"psnr": 30.0, "ssim": 0.7}, "input": {"psnr": 2.0, "ssim": 0.2}},
       "protocol": {"metric": "m"}}


def test_run_row_keeps_the_runs_scores_and_averages_psnr():
    assert run_row(RES) == {"a/psnr": 20.0, "a/ssim": 0.5, "b/psnr": 30.0, "b/ssim": 0.7, "psnr": 25.0,
                            "protocol": {"metric": "m"}}
    assert run_row(RES, ("b",))["psnr"] == 30.0



def test_restore_eval_checks_the_held_out_set_first_and_scores_the_sampling_G():
    from types import SimpleNamespace

    from gankit.errors import GankitError
    from gankit.tasks.restore_common import RestoreEval

    cfg = SimpleNamespace(eval=SimpleNamespace(n=3))

    def no_split(c):
        raise GankitError("no test/ split")

    with pytest.raises(GankitError, match="no test/ split"):
        RestoreEval(cfg, "cpu", None, lambda *a, **k: RES, no_split)
    calls = []

    def evaluate(c, G, device, n, run, step):
        calls.append((c, G, device, n, run, step))
        return RES

    ev = RestoreEval(cfg, "cpu", None, evaluate, lambda c: None, ("a",))
    st = SimpleNamespace(sampling_nets={"G": "the EMA G"})
    assert ev.score(st, 5, "r")["psnr"] == 20.0 and ev.key == "psnr" and ev.higher
    assert calls == [(cfg, "the EMA G", "cpu", 3, "r", 5)]
