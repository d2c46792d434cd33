"""Shared fixtures. MNIST is converted once into the user's gankit cache (as in real use);
tests that exercise the conversion or download themselves point $GANKIT_CACHE elsewhere."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("GANKIT_CACHE", str(d))
    return d
