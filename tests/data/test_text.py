"""Text data (gankit.data.text): reading UTF-8 lines, vocabularies, encoding and its errors."""

import pytest
import torch

from gankit.data.text import BOS, EOS, PAD, UNK, Vocab, read_lines
from gankit.errors import GankitError


def test_read_lines_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("hello world\n\n  \nsecond line  \n", encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.txt").write_text("héllo\n", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not read\n")
    assert read_lines(tmp_path / "a.txt") == ["hello world", "second line"]
    assert read_lines(tmp_path) == ["hello world", "second line", "héllo"]


def test_not_utf8_names_the_line_and_column(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"fine\nalso fine\nab\xffc\n")
    with pytest.raises(GankitError, match=r"bad\.txt: line 3 is not UTF-8 \(byte 0xff at column 3\)"):
        read_lines(f)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="no .txt files"):
        read_lines(tmp_path / "empty")
    with pytest.raises(GankitError, match="no such file"):
        read_lines(tmp_path / "missing.txt")


def test_char_vocab_orders_by_frequency_then_token():
    v = Vocab.build(["abca", "b"], "char")
    assert v.tokens == ("<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c")  # a: 2, b: 2, c: 1
    ids, cut = v.encode(["cab", "abcab"], max_len=4)
    assert cut == 1  # "abcab" has 5 tokens
    assert ids.tolist() == [[BOS, 6, 4, 5, EOS, PAD], [BOS, 4, 5, 6, 4, EOS]]
    assert v.decode(ids[0]) == "cab" and v.decode(ids[1]) == "abca"
    assert v.encode(["az"], 4)[0][0, 2].item() == UNK  # unseen token
    assert v.decode(torch.tensor([BOS, 4, UNK, EOS, 5])) == "a<unk>"


def test_word_vocab_round_trip_and_mismatch():
    v = Vocab.build(["the cat sat", "the dog"], "word", max_size=3)
    assert v.tokens[4:] == ("the", "cat", "dog")  # 'the' twice, then ties by token, capped at 3
    ids, _ = v.encode(["the   dog sat"], 8)
    assert v.decode(ids[0]) == "the dog <unk>"
    assert Vocab.from_dict(v.to_dict()) == v
    v.check(Vocab.from_dict(v.to_dict()), "x")
    with pytest.raises(GankitError, match="x: a char-level vocabulary, but the run was trained on word-level"):
        v.check(Vocab.build(["the"], "char"), "x")
    with pytest.raises(GankitError, match="vocabulary mismatch .* first difference at id 4"):
        v.check(Vocab.build(["the dog cat"], "word"), "x")
    with pytest.raises(GankitError, match="not a gankit vocabulary"):
        Vocab.from_dict({"level": "word", "tokens": ["a", "b"]})
