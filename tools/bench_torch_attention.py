#!/usr/bin/python3
"""PyTorch CPU attention timings: the reference `tessera bench ops` prints beside its own.

Usage: bench_torch_attention.py REPS LQ:LK [LQ:LK ...]
Prints one line per shape: "LQ LK SECONDS" (median), batch 1, 8 heads, head dim 64.
"""
import sys
import time

import torch


def attention(q, k, v, scale):
    return torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1).matmul(v)


def main():
    reps = int(sys.argv[1])
    torch.manual_seed(0)
    with torch.no_grad():
        for shape in sys.argv[2:]:
            lq, lk = (int(x) for x in shape.split(":"))
            q = torch.randn(1, 8, lq, 64)
            k = torch.randn(1, 8, lk, 64)
            v = torch.randn(1, 8, lk, 64)
            attention(q, k, v, 0.125)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                attention(q, k, v, 0.125)
                times.append(time.perf_counter() - t0)
            times.sort()
            print(lq, lk, times[len(times) // 2], flush=True)


if __name__ == "__main__":
    main()
