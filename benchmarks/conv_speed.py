"""Seconds per training step of the conv encoder+decoder, one vs two convs per stage.

    python benchmarks/conv_speed.py [--size 32] [--batch 64]
"""

import argparse
import os
import platform
import time

import torch
from torch.nn import functional as F

from xcausal.nn import ConvDecoder, ConvEncoder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 1, a.size, a.size, generator=g)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| convs per stage | s/step |\n|---|---|")
    for depth in (1, 2):
        enc = ConvEncoder(in_channels=1, image_size=a.size, latent_dim=16, convs_per_stage=depth)
        dec = ConvDecoder(out_channels=1, image_size=a.size, latent_dim=16, convs_per_stage=depth)
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()])

        def step() -> None:
            mu, _ = enc(x)
            loss = F.binary_cross_entropy_with_logits(dec(mu), x)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        t = time.perf_counter()
        for _ in range(a.steps):
            step()
        print(f"| {depth} | {(time.perf_counter() - t) / a.steps:.4f} |")


if __name__ == "__main__":
    main()
