"""The reconstruction task's inference surfaces beyond one image: scans (each slice simulated,
reconstructed and written back as a scan), the ONNX graphs (the same function as `gankit recon`,
MRI's data-consistency step included), and the `gankit serve` panel. Networks are untrained
(seeded): what is tested is the path, not the quality."""

from __future__ import annotations

import base64
import importlib.util
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.media import medical
from gankit.media.scans import ScanOptions
from gankit.run import Run
from gankit.tasks import get_task
from gankit.tasks.recon import physics
from gankit.tasks.recon.evaluation import reconstruct
from gankit.tasks.recon.infer import recon_path
from gankit.tasks.recon.measure import Measure
from gankit.tasks.recon.onnx import data_consistency_real, mri_example, recon_graphs


def _helpers():
    """tests/test_medical_io.py's synthetic CT series (tests are not a package: imported by path)."""
    path = Path(__file__).parents[2] / "test_medical_io.py"
    spec = importlib.util.spec_from_file_location("_medical_io_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.hu_volume, mod.write_series


hu_volume, write_series = _helpers()


META = {"name": "phantoms", "shape": [1, 32, 32], "channels": 1, "count": 2000}  # what a recon run saves


def fresh(preset: str, *sets: str) -> Run:
    cfg = gankit.load_config(preset, overrides=["model.g_width=4", "recon.size=32", "device=cpu", *sets])
    torch.manual_seed(0)
    nets = {k: v.eval() for k, v in get_task("recon").inference_nets(cfg, {}).items()}
    return Run.for_task("recon")(directory=Path("."), config=cfg, nets=nets, data_meta=META, step=0,
                                 device=torch.device("cpu"), ema=False, task="recon")


@pytest.fixture(scope="module")
def ct():
    return fresh("recon-ct")


@pytest.fixture(scope="module")
def mri():
    return fresh("recon-mri")


# -- ONNX: the graphs are gankit's own reconstruction --------------------------------------------


def test_the_real_dft_is_the_fft_data_consistency():
    x, k0 = torch.rand(2, 1, 12, 10), torch.rand(2, 1, 12, 10)
    cols = torch.from_numpy(physics.cartesian_mask(10, 4, 0.2, "random", 3))
    k = physics.undersample(k0, cols)
    got = data_consistency_real(x, torch.cat([k.real, k.imag], 1), cols.float().expand(2, 1, 12, 10))
    want = physics.data_consistency(x, k, cols)
    torch.testing.assert_close(torch.complex(got[:, :1], got[:, 1:]), want, atol=2e-6, rtol=0)
    nothing = data_consistency_real(x, torch.zeros(2, 2, 12, 10), torch.zeros(2, 1, 12, 10))
    torch.testing.assert_close(nothing[:, :1], x, atol=2e-6, rtol=0)  # no measurement: the image itself
    assert nothing[:, 1:].abs().max() < 2e-6


def test_the_graphs_compute_what_gankit_recon_does(ct, mri):
    gen = torch.Generator().manual_seed(0)
    feed = mri_example(2, (32, 32), gen, 32, 4)
    (g,) = recon_graphs(mri.config, mri.nets["G"])
    cols = feed["mask"][0, 0, 0] > 0.5
    k = torch.complex(feed["kspace"][:, :1], feed["kspace"][:, 1:])
    want = reconstruct(mri.nets["G"], (feed["image"] + 1) / 2, k, Measure("mri", mask=tuple(cols.tolist())),
                       mri.config.recon)
    with torch.no_grad():
        got = g.module(*feed.values())
    torch.testing.assert_close(torch.complex(got[:, :1], got[:, 1:]), want, atol=1e-5, rtol=0)
    (g,) = recon_graphs(ct.config, ct.nets["G"])
    y = torch.rand(2, 1, 32, 32)
    m = Measure.of(ct.config.recon)
    sino = torch.zeros(2, 32, 30)  # CT's reconstruction does not use the measurements (no DC step)
    with torch.no_grad():
        want = reconstruct(ct.nets["G"], y, sino, m, ct.config.recon)
        torch.testing.assert_close((g.module(y * 2 - 1) + 1) / 2, want)


# -- scans ----------------------------------------------------------------------------------------


def test_recon_reconstructs_each_slice_of_a_series_and_writes_a_series(ct, mri, tmp_path):
    write_series(tmp_path / "ct", hu_volume(3))
    notes = []
    r = recon_path(ct, tmp_path / "ct", tmp_path / "out", simulate="ct:views=30", log=notes.append)
    assert r["kind"] == "scan" and r["n"] == 3 and len(r["per_slice"]) == 3 and "30 views" in r["measure"]
    assert "window centre 40 width 400" in notes[0] and "written back in Hounsfield units" in notes[1]
    out = medical.read_scan(tmp_path / "out")
    assert out.values.shape == (3, 32, 32) and out.headers[0].ImageType[0] == "DERIVED"
    assert -160 <= out.values.min() and out.values.max() <= 240  # the window's range, in HU
    r = recon_path(mri, tmp_path / "ct", tmp_path / "pngs", simulate="mri:accel=4",
                   scan=ScanOptions(slice_format="png"))
    assert r["format"] == "pngs" and r["dc_error"] < 1e-5 < r["dc_error_input"]


def test_the_recon_command_takes_a_nifti_volume(ct, tmp_path, capsys):
    vol = np.moveaxis(hu_volume(2), 0, -1).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.diag([0.5, 0.5, 2.0, 1.0])), str(tmp_path / "v.nii.gz"))
    from gankit.export import _write_pair

    _write_pair(ct, tmp_path / "g.safetensors", tmp_path / "g.json")
    assert main(["recon", str(tmp_path / "g.safetensors"), str(tmp_path / "v.nii.gz"), "--simulate", "ct:views=60",
                 "--window=-500,1500", "--out", str(tmp_path / "o.nii.gz")]) == 0
    line = capsys.readouterr().out
    assert "reconstructed 2 scan slices" in line and "mean over its slices" in line and "PSNR" in line
    img = nib.load(str(tmp_path / "o.nii.gz"))
    assert img.shape == (32, 32, 2) and np.allclose(img.affine, np.diag([0.5, 0.5, 2.0, 1.0]))


def test_bad_scans_are_one_line_with_nothing_written(ct, tmp_path):
    write_series(tmp_path / "ct", hu_volume(2))
    nib.save(nib.Nifti1Image(np.zeros((32, 20, 2), np.float32), np.eye(4)), str(tmp_path / "wide.nii"))
    cases = [(tmp_path / "ct", None, "a scan is images, not measurements; add --simulate"),
             (tmp_path / "ct", "mri:accel=4", "reconstructs CT"),
             (tmp_path / "wide.nii", "ct:views=30", "reconstruction needs a square image")]
    for src, sim, msg in cases:
        with pytest.raises(GankitError) as e:
            recon_path(ct, src, tmp_path / "out", simulate=sim)
        assert msg in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


# -- serve ----------------------------------------------------------------------------------------


def test_the_serve_panel_reconstructs_an_upload(ct, mri):
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient
    from gankit.apps.serve import make_app
    from gankit.data.phantoms import shepp_logan

    buf = io.BytesIO()
    Image.fromarray((shepp_logan(40) * 255).round().astype(np.uint8)).save(buf, format="PNG")
    for run, field, value in ((ct, "views", "60"), (mri, "accel", "8")):
        c = TestClient(make_app(run), base_url="http://localhost")
        info = c.get("/api/info").json()
        assert [p["name"] for p in info["panels"]] == ["recon"] and field in info["panels"][0]["fields"]
        # a labelled number: the page draws its input from the description (no task names in app.js)
        assert info["panels"][0]["fields"][field]["label"] in ("CT views", "MRI acceleration")
        resp = c.post("/api/recon", files={"image": ("s.png", buf.getvalue(), "image/png")}, data={field: value})
        assert resp.status_code == 200, resp.text
        d = resp.json()
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["image"].split(",", 1)[1]))))
        assert img.shape[0] == 40 and img.shape[1] > 3 * 40  # classical | gankit | upload
        notes = " ".join(d["notes"])
        assert ("60 views" if field == "views" else "5 of 40") in notes and "data-consistency error" in notes
        bad = c.post("/api/recon", files={"image": ("s.png", _wide_png(), "image/png")})
        assert bad.status_code == 400 and "square image" in bad.json()["error"]


def _wide_png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
