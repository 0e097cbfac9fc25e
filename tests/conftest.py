import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    from mobile_sdk.tokenizer import Tokenizer

    return Tokenizer.from_file()
