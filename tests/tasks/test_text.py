"""The text task on a tiny corpus: MLE, RelGAN and SeqGAN train and resume exactly, the
graph-shaped step equals the eager one and reads nothing back, Gumbel-softmax passes D's
gradient to G, SeqGAN's REINFORCE estimator pushes toward rewarded tokens, and `gankit sample` /
`gankit eval` work on a run and refuse bad input in one line."""

from __future__ import annotations

import contextlib
import importlib.util

import pytest
import torch

import gankit
from gankit.cli import main
from gankit.config import load_config
from gankit.data.corpus import FORTUNES_DIR, load_text
from gankit.data.text import EOS, PAD
from gankit.models.text import CNNDiscriminator, LSTMGenerator, one_hot
from gankit.tasks.text.infer import sample_text
from gankit.tasks.text.phases import _alive, rewards
from gankit.training.checkpoint import load_checkpoint
from gankit.training.engine import Engine

TINY = ["text.hidden=16", "text.emb=8", "text.d_filters=4", "text.max_len=24", "train.batch=8",
        "log.progress=false", "device=cpu", "log.every=2", "log.grid_every=1000", "text.grid_lines=2"]
GAN = {"mle": [], "relgan": ["text.pretrain_steps=2"], "latentgan": ["text.pretrain_steps=2", "train.n_critic=2",
                                                                       "model.z_dim=4", "text.latent=6", "text.kind=text"],
       "seqgan": ["text.pretrain_steps=2", "text.d_pretrain_steps=1", "text.rollouts=2", "text.rollout_every=6"]}
PRESET = {"mle": "text-mle", "relgan": "relgan", "seqgan": "seqgan", "latentgan": "latentgan"}


@pytest.fixture
def corpus(tmp_path):
    words = ["the cat sat", "a dog ran far", "cats like milk", "dogs dig holes", "the sun is warm",
             "rain falls down", "we read books", "birds can fly", "fish swim deep", "trees grow tall"]
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "animals.txt").write_text("\n".join(words[:5] * 3) + "\n", encoding="utf-8")
    (tmp_path / "corpus" / "nature.txt").write_text("\n".join(words[5:] * 3) + "\n", encoding="utf-8")
    return tmp_path / "corpus"


def _cfg(method, src, *extra):
    return load_config(PRESET[method], overrides=[*TINY, *GAN[method], f"data.source={src}", *extra])


def _engine(cfg, mode):
    task = gankit.tasks.get_task("text")
    return Engine.build(cfg, task.load_data(cfg, torch.device("cpu")), torch.device("cpu"), mode=mode)


def _weights(e):
    return torch.cat([p.detach().flatten() for m in e.st.nets.values() for p in m.parameters()])


@pytest.mark.parametrize("method", ["mle", "relgan", "seqgan", "latentgan"])
def test_graph_shaped_step_equals_eager_and_reads_nothing_back(method, corpus, monkeypatch, no_host_reads):
    runs = []
    for mode in ("eager", "static"):
        topics = [] if method == "latentgan" else ["model.conditional=true"]
        e = _engine(_cfg(method, corpus, "train.steps=6", *topics), mode)
        w0 = _weights(e)
        if mode == "static":  # every phase (mle, d, gan) without a host read: a CUDA graph could hold it
            monkeypatch.setattr(torch.Tensor, "tolist", lambda *a: (_ for _ in ()).throw(AssertionError("host read")))
            ctx = no_host_reads()
        else:
            ctx = contextlib.nullcontext()
        with ctx:
            for t in range(5):
                e.step(t)
        monkeypatch.undo()
        assert not torch.equal(w0, _weights(e))
        runs.append((_weights(e), e.st.acc.clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert e.st.task.flags(e.st.cfg, 4) == ("mle" if method == "mle" else "gan")


def test_gumbel_softmax_passes_ds_gradient_to_g():
    """RelGAN's relaxation: D's score of G's soft one-hots has a gradient in every G weight, and
    the soft rows sum to 1 and sharpen toward the hard tokens as beta grows."""
    torch.manual_seed(0)
    G, D = LSTMGenerator(9, 4, 8), CNNDiscriminator(9, 4, filters=3)
    g = torch.Generator().manual_seed(1)
    soft, hard = G.gumbel(6, torch.tensor(1.0), None, g, 5)
    D(soft).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    torch.testing.assert_close(soft.sum(2), torch.ones(5, 6))
    sharp, hard2 = G.gumbel(6, torch.tensor(1e4), None, torch.Generator().manual_seed(1), 5)
    assert torch.equal(hard, hard2)  # the same noise picks the same tokens
    alive = _alive(hard)
    assert torch.equal(sharp.argmax(2)[alive], hard[alive])  # at high beta the soft one-hot is the token's
    assert (sharp.detach().max(2).values[alive] > 0.99).all()


def test_reinforce_moves_probability_toward_rewarded_tokens():
    """SeqGAN's estimator on a toy: D rewards lines whose first token is 4. After a few REINFORCE
    steps G emits token 4 first far more often than before (and a reward of the opposite sign
    pushes it away)."""
    def first_token_share(G):
        return (G.sample(400, 3, 1.0, None, torch.Generator().manual_seed(5))[:, 0] == 4).float().mean()

    class Likes4(torch.nn.Module):
        def __init__(self, sign):
            super().__init__()
            self.sign = sign

        def forward(self, x, y=None):
            return self.sign * 6.0 * (x[:, 0, 4] - 0.5)  # logits: high when token 0 is 4

    for sign in (1.0, -1.0):
        torch.manual_seed(0)
        G = LSTMGenerator(8, 4, 8)
        before = first_token_share(G)
        opt = torch.optim.Adam(G.parameters(), lr=0.05)
        g = torch.Generator().manual_seed(2)
        for _ in range(15):
            seq = G.sample(64, 3, 1.0, None, g)
            q, _ = rewards(G, Likes4(sign), seq, None, rollouts=2, every=1, gen=g)
            alive = _alive(seq).float()
            adv = (q - (q * alive).sum(0) / alive.sum(0).clamp_min(1)) * alive
            inp = torch.cat([G.start(64, "cpu")[:, None], seq[:, :-1]], 1)
            logp = -torch.nn.functional.cross_entropy(G(inp).transpose(1, 2), seq, reduction="none")
            opt.zero_grad()
            (-(logp * adv).sum() / alive.sum()).backward()
            opt.step()
        after = first_token_share(G)
        assert (after > before + 0.3) if sign > 0 else (after < before / 2), (sign, before, after)


def test_rollout_rewards_keep_prefixes_and_score_the_whole_line():
    torch.manual_seed(0)
    G = LSTMGenerator(7, 4, 8)
    seq = torch.tensor([[4, 5, 6, 4, EOS, PAD], [5, 5, 5, 5, 5, 5]])
    keep = torch.tensor([2, 3])
    done = G.complete(seq, keep, None, torch.Generator().manual_seed(0))
    assert torch.equal(done[0, :2], seq[0, :2]) and torch.equal(done[1, :3], seq[1, :3])
    after_eos = torch.cumsum((done == EOS).long(), 1) > (done == EOS).long()
    assert (done[after_eos] == PAD).all()

    class Count5(torch.nn.Module):
        def forward(self, x, y=None):
            return x[:, :, 5].sum(1) - 3.0

    q, _ = rewards(G, Count5(), seq, None, rollouts=3, every=4, gen=torch.Generator().manual_seed(0))
    full = torch.sigmoid(Count5()(one_hot(seq, 7)))
    torch.testing.assert_close(q[:, 4:], full[:, None].expand(2, 2))  # the last tokens: D of the whole line
    assert torch.equal(q[:, 0], q[:, 3])  # tokens before the first scored prefix share its reward


@pytest.mark.parametrize("method", ["mle", "relgan", "seqgan", "latentgan"])
def test_resume_is_exact(method, corpus, tmp_path):
    full = gankit.train(_cfg(method, corpus, "train.steps=6"), str(tmp_path / "full"))
    gankit.train(_cfg(method, corpus, "train.steps=3"), str(tmp_path / "part"))
    part = gankit.train(_cfg(method, corpus, "train.steps=6"), str(tmp_path / "part"), resume=True)
    a = load_checkpoint(full.dir / "checkpoints" / "last.pt")["nets"]
    b = load_checkpoint(part.dir / "checkpoints" / "last.pt")["nets"]
    assert a.keys() == b.keys() and all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])


def test_corpus_split_topics_and_truncation(corpus, tmp_path, capsys):
    train = load_text(str(corpus), "word", 8)
    test = load_text(f"{corpus}:test", "word", 8, vocab=train.vocab, classes=train.classes)
    assert train.classes == ["animals", "nature"] and len(train) + len(test) == 10  # duplicates dropped
    assert not set(train.lines) & set(test.lines)
    assert train.lines == load_text(str(corpus), "word", 8).lines  # the split is fixed
    assert [train.classes[k] for k in train.y.tolist()] == \
        ["animals" if ln in "the cat sat|a dog ran far|cats like milk|dogs dig holes|the sun is warm".split("|")
         else "nature" for ln in train.lines]
    f = tmp_path / "long.txt"
    f.write_text("".join(f"short {i}\n" for i in range(20)) + "".join(f"long {i} " + "x " * 50 + "\n"
                                                                       for i in range(8)), encoding="utf-8")
    data = load_text(str(f), "word", 5)
    n_long = sum(ln.startswith("long") for ln in data.lines)
    err = capsys.readouterr().err
    assert n_long and err.count(f"{n_long} of {len(data)} lines are longer than text.max_len = 5 tokens") == 1
    assert err.count("\n") == 1 and f"{n_long} lines truncated to 5 tokens" in data.notes


def test_cli_trains_samples_and_evaluates(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    sets = [x for s in TINY + ["text.level=word", "model.conditional=true"] for x in ("--set", s)]
    assert main(["train", "--preset", "text-mle", "--data", str(corpus), "--steps", "4", "--out", str(run),
                 *sets]) == 0
    out = capsys.readouterr().out
    assert "gankit sample" in out and "--temperature" in out
    assert (run / "samples" / "step_000004.txt").read_text(encoding="utf-8").count("\n") == 2
    assert main(["sample", str(run), "--n", "5", "--seed", "3", "--temperature", "0.7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    assert main(["sample", str(run), "--n", "5", "--seed", "3", "--temperature", "0.7"]) == 0
    assert capsys.readouterr().out.splitlines() == lines  # a seed gives the same lines
    assert main(["sample", str(run), "--n", "3", "--prefix", "the", "--topic", "animals",
                 "--txt", str(tmp_path / "o.txt")]) == 0
    written = (tmp_path / "o.txt").read_text(encoding="utf-8").splitlines()
    assert len(written) == 3 and all(ln.split()[0] == "the" for ln in written)
    assert main(["eval", str(run), "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "nll" in out and "bleu4" in out and "self_bleu4" in out and "real" in out
    loaded = gankit.load(run)  # the same from Python
    assert sample_text(loaded, 5, temperature=0.7, seed=3) == lines
    assert main(["export", str(run), "--out", str(tmp_path / "g.safetensors")]) == 0  # and from an export
    capsys.readouterr()
    assert sample_text(gankit.load(str(tmp_path / "g.safetensors")), 5, temperature=0.7, seed=3) == lines
    assert all(ln.startswith("the") for ln in sample_text(loaded, 3, prefix="the", topic=0))
    assert not hasattr(loaded, "sample")  # sampling images from noise is the generation task's (Sampling)
    scores = gankit.api.evaluate(str(run), [], n=20)
    assert 0 <= scores["temperature 1"]["bleu2"] <= 1 and scores["nll"] > 0


def test_cli_refuses_bad_input_in_one_line(corpus, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbad \xe9 latin-1\n")
    assert main(["train", "--preset", "text-mle", "--data", str(bad), "--steps", "1", "--out",
                 str(tmp_path / "x")]) == 2
    assert "bad.txt: line 2 is not UTF-8" in capsys.readouterr().err
    run = gankit.train(_cfg("mle", corpus, "train.steps=1"), str(tmp_path / "run"))
    capsys.readouterr()
    for extra, msg in [(["--prefix", "zebra"], "'z' not in the run's char vocabulary"),
                       (["--temperature", "0"], "--temperature 0.0: expected a number > 0"),
                       (["--topic", "animals"], "needs a topic-conditional text run"),
                       (["--out", "x.png"], "--out: for generate runs"),
                       (["--class", "3"], "--class: for generate runs")]:  # the flag, not its dest (label)
        assert main(["sample", str(run.dir), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (extra, err)
    other = tmp_path / "other.txt"
    other.write_text("".join(f"zz yy {i}\n" for i in range(20)), encoding="utf-8")
    assert main(["train", "--resume", str(run.dir), "--set", f"data.source={other}", "--set", "train.steps=2",
                 "--force"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "resuming on" in err and "vocabulary mismatch" in err, err
    assert main(["train", "--preset", "text-mle", "--data", str(corpus / "animals.txt"), "--steps", "1", "--out",
                 str(tmp_path / "y"), "--set", "model.conditional=true"]) == 2
    assert "has no topics" in capsys.readouterr().err


@pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason="Debian's fortunes package is not installed (make test installs it as root)")
def test_fortunes_corpus_is_the_documented_one():
    """The built-in corpus as docs/cli.md describes it: 4,154 unique cookies of at most 64
    characters from 41 topic files, 623 held out, a character vocabulary built on the rest."""
    train = load_text("fortunes", "char", 64)
    test = load_text("fortunes:test", "char", 64, vocab=train.vocab, classes=train.classes)
    assert (len(train), len(test), len(train.classes)) == (3531, 623, 41)
    assert max(len(ln) for ln in train.lines + test.lines) <= 64
    assert not any(n for n in train.notes if "truncated" in n)
    assert "computers" in train.classes and train.y.max() < 41


def test_smiles_runs_skip_invalid_lines_write_csv_and_score_molecules(tmp_path, capsys):
    pytest.importorskip("rdkit")
    mols = ["CCO", "CCN", "CCC", "CCCl", "c1ccccc1", "Cc1ccccc1", "CC(=O)O", "CCOC(=O)C", "NCCO", "OCCO",
            "CCCO", "CCCN", "c1ccncc1", "C1CCCCC1", "C1CCNCC1", "O=C1CCCCC1", "Brc1ccccc1", "c1ccoc1", "CCCCO",
            "CC(C)O"]
    f = tmp_path / "mols.smi.txt"
    f.write_text("\n".join(mols + ["C1CC", "Cl(("]) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    sets = [x for s in TINY for x in ("--set", s)]
    assert main(["train", "--preset", "charrnn", "--data", str(f), "--steps", "3", "--out", str(run), *sets,
                 "--set", "text.layers=1"]) == 0
    err = capsys.readouterr().err
    assert err.count("2 of 22 lines are not valid SMILES (RDKit) and were skipped") == 1, err
    assert main(["sample", str(run), "--n", "6", "--seed", "0", "--smiles", str(tmp_path / "out.csv")]) == 0
    rows = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "SMILES,valid" and len(rows) == 7 and all(r.rsplit(",", 1)[1] in "01" for r in rows[1:])
    assert f"6 molecules, {sum(r.endswith(',1') for r in rows[1:])} valid" in capsys.readouterr().out
    r = gankit.api.evaluate(str(run), [], n=8)
    s = r["temperature 1"]
    assert 0 <= s["valid"] <= 1 and "MOSES" in r["protocol"]["metric"]
    assert r["real"]["valid"] == 1.0 and r["real"]["fcd"] >= 0 and 0 < r["real"]["intdiv1"] < 1
    text_run = gankit.train(_cfg("mle", f, "train.steps=1"), str(tmp_path / "t"))
    assert main(["sample", str(text_run.dir), "--smiles", str(tmp_path / "x.csv")]) == 2
    assert "trained on text, not SMILES" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(importlib.util.find_spec("moses") is None, reason="molsets (MOSES's data) is not installed")
def test_moses_source_is_the_documented_subset():
    train = load_text("moses", "char", 64, smiles=True)
    test = load_text("moses:test", "char", 64, vocab=train.vocab, smiles=True)
    assert (len(train), len(test)) == (100_000, 10_000) and not train.classes
    assert train.lines[:3] == load_text("moses", "char", 64).lines[:3]  # fixed subset
    assert not any("truncated" in n for n in train.notes)  # MOSES SMILES are at most 64 characters


def test_train_init_starts_a_gan_from_an_mle_run(corpus, tmp_path, capsys):
    """train.init: RelGAN's G starts from a text-mle run's G (its D afresh); another width or
    another vocabulary is refused in one line."""
    mle = gankit.train(_cfg("mle", corpus, "train.steps=3"), str(tmp_path / "mle"))
    g = load_checkpoint(mle.dir / "checkpoints" / "last.pt")["nets"]["G"]
    e = _engine(_cfg("relgan", corpus, "text.pretrain_steps=0"), "eager")
    note = e.init_from(str(mle.dir))
    assert note.startswith("init: G from ") and "(step 3)" in note
    assert all(torch.equal(g[k], v) for k, v in e.st.nets["G"].state_dict().items())
    run = gankit.train(_cfg("relgan", corpus, "text.pretrain_steps=0", "train.steps=2", f"train.init={mle.dir}"),
                       str(tmp_path / "gan"))
    assert "init: G from" in (run.dir / "train.log").read_text()
    wide = _engine(_cfg("relgan", corpus, "text.hidden=12"), "eager")
    with pytest.raises(gankit.GankitError, match="network G has other shapes there"):
        wide.init_from(str(mle.dir))
    words = _engine(_cfg("relgan", corpus, "text.level=word"), "eager")
    with pytest.raises(gankit.GankitError, match="train.init .*a char-level vocabulary|word-level"):
        words.init_from(str(mle.dir))
    with pytest.raises(gankit.GankitError, match="not a run directory"):
        words.init_from(str(tmp_path / "nowhere"))


def test_latentgan_decodes_codes_and_is_scored_without_a_likelihood(corpus, tmp_path):
    """LatentGAN's decoder starts from the code (different codes, different next-token logits);
    a trained run samples through its mapper and is scored without an NLL (it has none)."""
    torch.manual_seed(0)
    dec = LSTMGenerator(9, 4, 8, latent=3)
    ids = torch.tensor([[1, 4, 5, EOS]])
    a, b = dec(ids, code=torch.zeros(1, 3)), dec(ids, code=torch.ones(1, 3))
    assert not torch.allclose(a, b)
    run = gankit.train(_cfg("latentgan", corpus, "train.steps=4"), str(tmp_path / "lg"))
    assert set(load_checkpoint(run.dir / "checkpoints" / "last.pt")["nets"]) == {"G", "E", "D"}
    assert len(sample_text(gankit.load(run.dir), 3, seed=0)) == 3
    r = gankit.api.evaluate(str(run.dir), [], n=10)
    assert "nll" not in r and 0 <= r["temperature 1"]["bleu2"] <= 1
    rows = (run.dir / "metrics.jsonl").read_text().splitlines()
    assert '"phase":"ae"' in rows[0] and '"phase":"gan"' in rows[-1]
