"""Word-level tokenizer: text -> fixed-length int32 ids. The apps re-implement this exactly.

Rules (kept ASCII-only so Kotlin and Swift can mirror them bit for bit):
1. ASCII letters are lower-cased (A-Z -> a-z); nothing else changes.
2. Separators are ASCII whitespace and ASCII punctuation (`string.whitespace`, `string.punctuation`).
   A word is a maximal run of non-separator characters ("café" and "日本" are single words).
3. A word in the vocabulary maps to its line number in the vocabulary file; any other word to <unk>.
4. ids = [<sot>] + word ids + [<eot>], right-padded with <pad> to `context_length`. Longer text is
   truncated to its first `context_length - 2` words and still ends with <eot>.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import DataError

PAD, SOT, EOT, UNK = "<pad>", "<sot>", "<eot>", "<unk>"
SPECIALS = (PAD, SOT, EOT, UNK)
CONTEXT_LENGTH = 20
_SEPARATORS = frozenset(string.whitespace + string.punctuation)
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def default_vocab_path() -> Path:
    return Path(str(resources.files("mobile_sdk") / "assets" / "vocab.txt"))


def split_words(text: str) -> list[str]:
    """Rules 1-2: lower-case ASCII, split on ASCII whitespace and punctuation."""
    words, cur = [], []
    for ch in text.translate(_LOWER):
        if ch in _SEPARATORS:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        words.append("".join(cur))
    return words


class Tokenizer:
    def __init__(self, vocab: list[str], context_length: int = CONTEXT_LENGTH):
        if list(vocab[: len(SPECIALS)]) != list(SPECIALS):
            raise DataError(f"vocabulary must start with {SPECIALS}, got {vocab[:4]}")
        if len(set(vocab)) != len(vocab):
            raise DataError("vocabulary has duplicate entries")
        if context_length < 2:
            raise DataError(f"context_length must be >= 2 (room for <sot> and <eot>), got {context_length}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = context_length
        self.pad_id, self.sot_id, self.eot_id, self.unk_id = (self.index[s] for s in SPECIALS)

    @classmethod
    def from_file(cls, path: str | Path | None = None, context_length: int = CONTEXT_LENGTH) -> "Tokenizer":
        path = Path(path) if path else default_vocab_path()
        try:
            vocab = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise DataError(f"cannot read vocabulary file {path}: {e}") from e
        return cls(vocab, context_length)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """One text -> int32 array of shape (context_length,)."""
        if not isinstance(text, str):
            raise DataError(f"text must be str, got {type(text).__name__}")
        words = split_words(text)[: self.context_length - 2]
        ids = [self.sot_id] + [self.index.get(w, self.unk_id) for w in words] + [self.eot_id]
        ids += [self.pad_id] * (self.context_length - len(ids))
        return np.asarray(ids, dtype=np.int32)

    def __call__(self, texts: str | list[str]) -> np.ndarray:
        """Text or list of texts -> int32 array (N, context_length)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return np.zeros((0, self.context_length), np.int32)
        return np.stack([self.encode(t) for t in texts])

    def decode(self, ids) -> str:
        words = []
        for i in np.asarray(ids).tolist():
            if i == self.eot_id:
                break
            if i not in (self.sot_id, self.pad_id):
                words.append(self.vocab[i])
        return " ".join(words)

    def describe(self) -> dict:
        """What the manifest records about this tokenizer."""
        return {"kind": "word", "vocab_size": self.vocab_size, "context_length": self.context_length,
                "pad_id": self.pad_id, "sot_id": self.sot_id, "eot_id": self.eot_id, "unk_id": self.unk_id}

    def files(self, out_dir: str | Path) -> dict[str, str]:
        """Write what an app needs to tokenize exactly as Python does (the vocabulary) into
        `out_dir`; -> {role: file name}."""
        out = Path(out_dir) / "vocab.txt"
        out.write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        return {"vocab_file": out.name}


def build_vocab() -> list[str]:
    """The vocabulary the committed file holds: specials, then every world word, sorted."""
    from .data.world import vocabulary_words

    return list(SPECIALS) + vocabulary_words()

