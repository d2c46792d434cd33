"""The optional Inception path: clear errors without the extra, loading with it."""

import importlib.util

import pytest

from gankit.errors import GankitError
from gankit.metrics.inception import inception_extractor

HAVE_FIDELITY = importlib.util.find_spec("torch_fidelity") is not None


@pytest.mark.skipif(HAVE_FIDELITY, reason="torch-fidelity is installed")
def test_without_the_extra_the_error_says_what_to_install(tmp_path):
    with pytest.raises(GankitError, match="needs the optional torch-fidelity package"):
        inception_extractor(tmp_path / "w.pth")


@pytest.mark.skipif(not HAVE_FIDELITY, reason="torch-fidelity (optional extra) is not installed")
def test_missing_weights_file(tmp_path):
    with pytest.raises(GankitError, match="no such file"):
        inception_extractor(tmp_path / "missing.pth")


@pytest.mark.skipif(not HAVE_FIDELITY, reason="torch-fidelity (optional extra) is not installed")
def test_randomly_initialised_weights_of_the_right_format_load(tmp_path):
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # Build the network without weights, save its random state dict, and load that file back.
    net = FeatureExtractorInceptionV3.__new__(FeatureExtractorInceptionV3)
    path = tmp_path / "random-inception.pth"
    try:
        torch.nn.Module.__init__(net)
        state = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=None).state_dict()
    except Exception:
        pytest.skip("this torch-fidelity cannot build the network without downloading weights")
    torch.save(state, path)
    extractor = inception_extractor(path)
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    assert extractor(x)[0].shape == (2, 2048)


@pytest.mark.skipif(not HAVE_FIDELITY, reason="torch-fidelity (optional extra) is not installed")
def test_the_clean_path_runs_the_network_as_its_forward_does(monkeypatch):
    """--resize clean hands the network float images through `pool_features`, bypassing
    torch-fidelity's uint8-only forward; at 299 px (where both resizes are the identity) the two
    must give the same features, or torch-fidelity's layer order has changed."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from gankit.metrics.inception import inception_features, pool_features

    # random weights, without the download the constructor makes when given no file
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    x = torch.randint(0, 256, (2, 3, 299, 299), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(pool_features(net, x.float()), net(x)[0])
    torch.testing.assert_close(inception_features(net, x, resize="clean"), inception_features(net, x))
