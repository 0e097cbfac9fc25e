import numpy as np
import pytest

from mobile_sdk.errors import DataError
from mobile_sdk.tokenizer import CONTEXT_LENGTH, Tokenizer, build_vocab, default_vocab_path, split_words


def test_committed_vocab_matches_world(tokenizer):
    # The committed file must be regenerated when the world's words change.
    assert default_vocab_path().read_text().splitlines() == build_vocab()
    assert tokenizer.vocab[:4] == ["<pad>", "<sot>", "<eot>", "<unk>"]


def test_encode_known_caption(tokenizer):
    ids = tokenizer.encode("a small red circle left of a large blue square")
    assert ids.dtype == np.int32 and ids.shape == (CONTEXT_LENGTH,)
    assert ids[0] == tokenizer.sot_id
    words = [tokenizer.vocab[i] for i in ids[1:11]]
    assert words == "a small red circle left of a large blue square".split()
    assert ids[11] == tokenizer.eot_id and (ids[12:] == tokenizer.pad_id).all()
    assert tokenizer.decode(ids) == "a small red circle left of a large blue square"


def test_case_and_punctuation(tokenizer):
    assert (tokenizer.encode("A RED, circle!") == tokenizer.encode("a red circle")).all()
    assert split_words("  a\tred\ncircle.  ") == ["a", "red", "circle"]


def test_empty_text(tokenizer):
    ids = tokenizer.encode("")
    assert list(ids[:2]) == [tokenizer.sot_id, tokenizer.eot_id] and (ids[2:] == tokenizer.pad_id).all()
    assert (tokenizer.encode("  ,.;  ") == ids).all()


def test_unknown_and_unicode_words_map_to_unk(tokenizer):
    ids = tokenizer.encode("a café 日本 red zebra")
    words = [tokenizer.vocab[i] for i in ids[1:6]]
    assert words == ["a", "<unk>", "<unk>", "red", "<unk>"]
    assert ids[6] == tokenizer.eot_id


def test_truncation_keeps_eot(tokenizer):
    ids = tokenizer.encode(" ".join(["red"] * 100))
    assert ids.shape == (CONTEXT_LENGTH,)
    assert ids[-1] == tokenizer.eot_id and (ids[1:-1] == tokenizer.index["red"]).all()


def test_batch_and_types(tokenizer):
    assert tokenizer(["a", "red circle"]).shape == (2, CONTEXT_LENGTH)
    assert tokenizer([]).shape == (0, CONTEXT_LENGTH)
    with pytest.raises(DataError):
        tokenizer.encode(3)


def test_bad_vocab(tmp_path):
    with pytest.raises(DataError, match="must start with"):
        Tokenizer(["a", "b"])
    with pytest.raises(DataError, match="cannot read"):
        Tokenizer.from_file(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="duplicate"):
        Tokenizer(["<pad>", "<sot>", "<eot>", "<unk>", "a", "a"])
