"""Training-data throughput of this machine: samples/s of the `train` data loader (rendering,
captions, hard negatives, truth tables) with N worker processes, no model. Used by
scripts/train_gpu.sh to size a run to a time budget; prints one number."""

import argparse
import time

from mobile_sdk.tokenizer import Tokenizer
from mobile_sdk.train import TrainConfig, train_loader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--pairs", type=float, default=0.0)
    ap.add_argument("--hard-negatives", type=int, default=3)
    a = ap.parse_args()
    cfg = TrainConfig(steps=100_000, batch_size=a.batch_size, workers=a.workers, pairs=a.pairs,
                      hard_negatives=a.hard_negatives, positives="truth")
    it = iter(train_loader(cfg, Tokenizer.from_file()))
    for _ in range(max(1, a.workers)):  # warm-up: every worker has started
        next(it)
    t0, n = time.time(), 0
    while time.time() - t0 < a.seconds:
        n += len(next(it)[0])
    print(f"{n / (time.time() - t0):.0f}")


if __name__ == "__main__":
    main()
