import pytest

from gankit.config import RunConfig, apply_overrides, load_config, preset_names, to_dict, from_dict
from gankit.errors import GankitError


def test_seed_mlp_is_the_tutorials_gan():
    cfg = load_config("seed-mlp")
    assert cfg.preset == "seed-mlp"
    assert cfg.model.g_hidden == (256, 512, 1024) and cfg.model.d_hidden == (1024, 512, 256)
    assert cfg.model.z_dim == 100 and cfg.model.leak == 0.2 and cfg.model.d_dropout == 0.3
    assert cfg.train.loss == "ns" and cfg.train.batch == 128
    assert cfg.train.lr_g == cfg.train.lr_d == 2e-4 and cfg.train.betas == (0.5, 0.999)
    assert cfg.data.source == "mnist"


def test_presets_listed():
    assert "seed-mlp" in preset_names()


def test_overrides_parse_types():
    cfg = load_config("seed-mlp", overrides=["train.lr_g=1e-4", "train.steps=7", "model.g_hidden=[8, 16]",
                                             "log.progress=false", "data.source=fake:1x8x8:32"])
    assert cfg.train.lr_g == 1e-4 and cfg.train.steps == 7
    assert cfg.model.g_hidden == (8, 16) and cfg.log.progress is False
    assert cfg.data.source == "fake:1x8x8:32"


def test_round_trip():
    cfg = load_config("seed-mlp", overrides=["seed=3"])
    assert from_dict(to_dict(cfg)) == cfg
    assert apply_overrides(cfg, ["train.batch=4"]).train.batch == 4
    assert cfg.replace(**{"train.steps": 5}).train.steps == 5


def test_yaml_file_over_preset(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  batch: 64\nmodel:\n  z_dim: 8\n")
    cfg = load_config("seed-mlp", file=f)
    assert cfg.train.batch == 64 and cfg.model.z_dim == 8 and cfg.train.lr_g == 2e-4
    assert load_config(file=f).preset is None


@pytest.mark.parametrize("override, words", [
    ("train.foo=1", ["unknown key train.foo", "steps, max_seconds, batch"]),
    ("nosection.x=1", ["unknown key nosection", "data, train", "log, model, reg"]),
    ("train.batch=0", ["train.batch = 0", "out of range", ">= 1"]),
    ("train.steps=-1", ["train.steps = -1", ">= 0"]),
    ("train.lr_d=-0.1", ["train.lr_d", "> 0"]),
    ("train.batch=abc", ["train.batch = 'abc'", "integer"]),
    ("train.batch=2.5", ["expected an integer"]),
    ("train.loss=wgan", ["train.loss = 'wgan'", "ns, minimax"]),
    ("model.arch=transformer", ["model.arch", "choose one of: mlp"]),
    ("device=tpu", ["device = 'tpu'", "auto, cpu, cuda"]),
    ("train.betas=[0.5]", ["train.betas", "2 values"]),
    ("train.betas=[0.5, 1.5]", ["train.betas", "[0, 1)"]),
    ("log.progress=maybe", ["log.progress", "true or false"]),
    ("train=3", ["train must be a mapping"]),
    ("train.batch", ["expected key=value"]),
])
def test_bad_values_rejected_with_one_line(override, words):
    with pytest.raises(GankitError) as e:
        load_config("seed-mlp", overrides=[override])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_unknown_preset_lists_valid():
    with pytest.raises(GankitError, match="unknown preset 'nope'.*seed-mlp"):
        load_config("nope")


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  batch: [1, 2\n")
    with pytest.raises(GankitError, match=r"bad.yaml: line \d+.*malformed YAML"):
        load_config(file=f)


def test_missing_config_file(tmp_path):
    with pytest.raises(GankitError, match="does not exist"):
        load_config(file=tmp_path / "nope.yaml")


def test_defaults_are_valid():
    assert from_dict({}) == RunConfig()


def test_config_is_the_shared_sections_plus_every_tasks():
    import dataclasses
    import pickle

    from gankit.config import SharedConfig
    from gankit.tasks import TASKS, task_part

    names = [f.name for f in dataclasses.fields(RunConfig)]
    shared = [f.name for f in dataclasses.fields(SharedConfig)]
    sections = [s for t in TASKS if task_part(t, "config") for s in task_part(t, "config").SECTIONS]
    assert names == shared + sections and {"model", "reg", "burnin", "translate", "text"} <= set(sections)
    cfg = load_config("pix2pix")
    assert pickle.loads(pickle.dumps(cfg)) == cfg and type(cfg) is RunConfig


@pytest.mark.parametrize("override, words", [
    ("task=nope", ["task = 'nope'; choose one of: generate, translate, superres"]),
    ("translate.grid_examples=0", ["translate.grid_examples = 0 is out of range; expected 1 to 64"]),
    ("text.eval_temperatures=[]", ["text.eval_temperatures = () is out of range", "one or more numbers > 0"]),
    ("model.info_cat=1", ["model.info_cat = 1 is out of range; expected 0 (off) or a code size >= 2"]),
    ("translate.nope=1", ["unknown key translate.nope; valid keys at translate: method, direction"]),
    # a task's rules hold whatever the task: the config carries every task's sections
    ("reg.clip=0.01", ["reg.gp and reg.clip are two ways to constrain a critic; use one"]),
])
def test_task_sections_ranges_and_rules(override, words):
    with pytest.raises(GankitError) as e:
        load_config("pix2pix", overrides=["reg.gp=10", "model.d_batchnorm=false", override])
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_config_py_names_no_task_and_task_configs_import_no_torch():
    import subprocess
    import sys
    from pathlib import Path

    import gankit.config
    from gankit.tasks import TASKS

    text = Path(gankit.config.__file__).read_text()
    assert not [t for t in TASKS if f'"{t}"' in text or f"'{t}'" in text]
    code = ("import sys\nfrom gankit.config import load_config\nload_config('cyclegan')\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
