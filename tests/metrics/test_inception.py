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
