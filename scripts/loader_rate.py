"""Training-data throughput of this machine: samples/s of the `train` data loader (rendering,
captions, hard negatives, truth tables) with N worker processes, no model. Used by
scripts/train_gpu.sh to size a run to a time budget; prints one number."""

import argparse
import time

import torch

from mobile_sdk.data.splits import WorldDataset
from mobile_sdk.tokenizer import Tokenizer
from mobile_sdk.train import _Batches, _Collate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--pairs", type=float, default=0.0)
    ap.add_argument("--hard-negatives", type=int, default=3)
    a = ap.parse_args()
    ds = WorldDataset("train", augment=True, hard_negatives=a.hard_negatives, pairs=a.pairs, truth=True)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=_Batches(0, 100_000, a.batch_size, 0, 1),
                                         collate_fn=_Collate(Tokenizer.from_file()), num_workers=a.workers,
                                         prefetch_factor=4 if a.workers else None)
    it = iter(loader)
    for _ in range(max(1, a.workers)):  # warm-up: every worker has started
        next(it)
    t0, n = time.time(), 0
    while time.time() - t0 < a.seconds:
        n += len(next(it)[0])
    print(f"{n / (time.time() - t0):.0f}")


if __name__ == "__main__":
    main()
