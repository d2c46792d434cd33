"""Property-based: whatever the input, the config parser and the array / IDX loaders give a
result or a one-line GankitError, never a traceback."""


import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gankit.config import load_config
from gankit.data import load_data
from gankit.data.idx import parse_idx
from gankit.errors import GankitError

KEYS = ["seed", "device", "data.source", "data.resolution", "data.channels", "model.arch", "model.z_dim",
        "model.g_hidden", "model.leak", "model.conditional", "model.d_head", "train.steps", "train.batch",
        "train.loss", "train.lr_g", "train.betas", "train.n_critic", "reg.gp", "reg.diffaug",
        "reg.label_smoothing", "eval.metrics", "log.every", "recover.lr_factor", "nope", "train.nope",
        "train", "model.g_hidden.x", ""]
yaml_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.none(),
                         st.text(max_size=12), st.lists(st.integers(-5, 2000), max_size=4).map(str))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _one_line(e: GankitError) -> None:
    assert "\n" not in str(e) and str(e)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(KEYS), yaml_scalars), max_size=5))
def test_any_overrides_give_a_config_or_a_clean_error(pairs):
    try:
        cfg = load_config("seed-mlp", overrides=[f"{k}={v}" for k, v in pairs])
        assert cfg.train.batch >= 1 and cfg.train.lr_g > 0
    except GankitError as e:
        _one_line(e)


@SETTINGS
@given(st.text(max_size=200))
def test_any_yaml_file_gives_a_config_or_a_clean_error(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("y") / "c.yaml"
    f.write_text(text)
    try:
        load_config(file=f)
    except GankitError as e:
        _one_line(e)


@SETTINGS
@given(st.binary(max_size=64))
def test_any_bytes_as_idx(raw):
    try:
        a = parse_idx(raw, "f")
        assert a.dtype == np.uint8
    except GankitError as e:
        _one_line(e)


dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_])
shapes = st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple)


@SETTINGS
@given(shape=shapes, dtype=dtypes, scale=st.sampled_from([1, 255, 1e6]), with_y=st.booleans(),
       y_len=st.integers(0, 8))
def test_any_array_file(tmp_path_factory, shape, dtype, scale, with_y, y_len):
    d = tmp_path_factory.mktemp("a")
    x = (np.random.default_rng(0).random(shape) * scale).astype(dtype)
    path = d / "d.npz"
    arrays = {"x": x}
    if with_y:
        arrays["y"] = np.arange(y_len)
    np.savez(path, **arrays)
    try:
        data = load_data(str(path))
        assert len(data) == len(x)
    except GankitError as e:
        _one_line(e)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_as_npz_or_npy(tmp_path_factory, raw):
    d = tmp_path_factory.mktemp("b")
    for name in ("f.npz", "f.npy"):
        (d / name).write_bytes(raw)
        try:
            load_data(str(d / name))
        except GankitError as e:
            _one_line(e)
