"""CPU cost of the orientation scores' entropy estimators (xcausal.structure.anm).

Per estimate (``entropy_1d``) on a normal, a uniform and an exponential sample, and per
variable-latent pair (``anm_direction(method="pnl")`` on the latent's normal scores, CMCL's
default), with a normal or a uniform variable as the cause; process CPU time, one thread.

    OMP_NUM_THREADS=1 python benchmarks/entropy_cost.py --n 2000 --reps 10
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from xcausal.structure.anm import anm_direction, entropy_1d, normal_scores


def cpu_seconds(fn, reps: int) -> float:
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    samples = {"normal": rng.normal(size=args.n), "uniform": rng.uniform(size=args.n),
               "exponential": rng.exponential(size=args.n)}
    rows = []
    for kind, x in samples.items():
        for est in ("gmm", "vasicek"):
            rows.append({"what": f"entropy_1d, {kind} sample", "estimator": est,
                         "cpu_ms": 1000 * cpu_seconds(lambda: entropy_1d(x, estimator=est), args.reps)})
    for kind in ("normal", "uniform"):
        u = samples[kind]
        z = normal_scores(np.tanh(u - u.mean()) + 0.5 * rng.normal(size=args.n))
        for est in ("gmm", "vasicek"):
            rows.append({"what": f"anm_direction pnl, {kind} cause", "estimator": est,
                         "cpu_ms": 1000 * cpu_seconds(lambda: anm_direction(u, z, method="pnl", entropy=est),
                                                      args.reps)})
    print(f"n = {args.n}, {args.reps} repetitions, CPU ms per call")
    for r in rows:
        print(f"{r['what']:36s} {r['estimator']:8s} {r['cpu_ms']:9.2f}")
    return rows


if __name__ == "__main__":
    main()
