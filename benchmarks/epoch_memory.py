"""Time and peak memory of one training epoch vs N: streamed, cached and in-memory images (issue #8, 6b).

    nice -n 10 python benchmarks/epoch_memory.py --data /tmp/epoch_mem_data \\
        --out benchmarks/results/epoch_memory

For every configuration ``N x size`` (default 1k, 10k, 50k at 32x32 and 5k at 128x128) a dataset
directory of PNGs is simulated once under ``--data`` (the CMCL Appendix-E generator, graph 5/10,
grayscale, written in chunks so generation never holds all images), then every (runner, mode)
runs in a fresh subprocess:

* runners: ``loader`` iterates one epoch of a torch DataLoader (batch 64, shuffled, ``--workers``
  worker processes) and touches each batch: the data pipeline alone; ``cmcl`` fits
  ``CMCL(epochs=1, data_loading=..., num_workers=--workers, dag_refit=False)``: one training epoch
  (needs CMCL's ``data_loading`` parameter; skipped when it is missing);
* modes: ``stream`` decodes PNGs lazily in the workers; ``cache`` reads the pre-packed uint8
  memory-mapped cache of ``CrossModalDataset.cached()`` (built once beforehand in its own
  subprocess, reported as runner ``build``); ``memory`` decodes every image into one float32
  array first (for ``cmcl``: ``data_loading="memory"``, decoded inside ``fit``).

Memory: the parent samples the child's process tree (the child and its DataLoader workers) every
``--interval`` seconds from ``/proc/<pid>/smaps_rollup``: PSS (proportional set size, so pages
shared between the main process and its forked workers count once), anonymous PSS (heap, not
file-backed: excludes mapped shared libraries and the memory-mapped cache, which the kernel can
drop), and the plain sum of RSS (double-counts shared pages). Peaks are kept per phase (``load``:
reading table.csv and every image header; ``prepare``: opening the cache / decoding into memory;
``epoch``). The child also reports ``ru_maxrss`` of itself and of its largest worker. Time is
wall-clock per phase, measured in the child.

Writes results.csv, results.json and README.md into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import inspect
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

DEFAULT_CONFIGS = "1000x32,10000x32,50000x32,5000x128"
MODES = ("stream", "cache", "memory")
RUNNERS = ("loader", "cmcl")
GRAPH = "5/10"
BATCH = 64
_PIXELS_PER_CHUNK = 1 << 22  # simulation chunk: 4096 images at 32x32, 256 at 128x128
MB = 1024.0 ** 2


# --------------------------------------------------------------------------- data
def dataset_dir(data: Path, n: int, size: int) -> Path:
    return data / f"n{n}_s{size}"


def make_dataset(out: Path, n: int, size: int, seed: int = 0) -> float:
    """Simulate ``n`` Appendix-E samples at ``size`` px into a dataset directory, chunk by chunk.

    Reused when ``out/table.csv`` exists (written last, after a rename of the whole directory).
    Returns the seconds spent (0 when reused). Chunks use seeds ``seed, seed + 1, ...``.
    """
    import pandas as pd
    from PIL import Image

    from xcausal.data.simulate import simulate_appendix_e

    if (out / "table.csv").is_file():
        return 0.0
    t0 = time.perf_counter()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    chunk = max(10, _PIXELS_PER_CHUNK // (size * size))
    tables, done = [], 0
    while done < n:
        k = min(chunk, n - done)
        k_sim = max(k, 10)  # the simulator's minimum
        sim = simulate_appendix_e(GRAPH, k_sim, seed=seed + done // chunk, image_size=size)
        u8 = np.clip(np.rint(sim.images[:k, 0] * 255.0), 0, 255).astype(np.uint8)
        names = []
        for j in range(k):
            name = f"images/{done + j:06d}.png"
            Image.fromarray(u8[j], mode="L").save(tmp / name, compress_level=1)
            names.append(name)
        t = sim.table.iloc[:k].copy()
        t.insert(0, "image", names)
        tables.append(t)
        done += k
    pd.concat(tables, ignore_index=True).to_csv(tmp / "table.csv", index=False)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- child
def _phase(name: str, pause: float = 0.0) -> None:
    """Announce a phase; ``pause`` first (outside every timed region) so that the parent samples
    the state at the end of the previous phase at least twice, however short it was."""
    time.sleep(pause)
    print(f"phase {name}", flush=True)


def cmcl_supports_data_loading() -> bool:
    from xcausal.models.cmcl import CMCL

    return "data_loading" in inspect.signature(CMCL.__init__).parameters


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its reaped children (the workers)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def child(a: argparse.Namespace) -> None:
    """One measured run; prints ``phase <name>`` lines and a final ``result <json>`` line."""
    import gc
    import resource

    import torch

    from xcausal.data import load_dataset

    torch.set_num_threads(a.threads)
    pause = 2.5 * a.interval
    times: dict[str, float] = {}
    _phase("load")
    t0, c0 = time.perf_counter(), _cpu_s()
    ds = load_dataset(a.dir, image_size=a.size)
    times["load_s"] = time.perf_counter() - t0
    times["load_cpu_s"] = _cpu_s() - c0
    _phase("prepare", pause)
    t0, c0 = time.perf_counter(), _cpu_s()
    if a.runner == "build":
        ds = ds.cached(rebuild=True)
    elif a.mode == "cache":
        ds = ds.cached()
    elif a.mode == "memory" and a.runner == "loader":
        x_all = torch.from_numpy(ds.images())
    times["prepare_s"] = time.perf_counter() - t0
    times["prepare_cpu_s"] = _cpu_s() - c0
    extra: dict = {}
    if a.runner != "build":
        _phase("epoch", pause)
        t0, c0 = time.perf_counter(), _cpu_s()
        if a.runner == "loader":
            gen = torch.Generator().manual_seed(0)
            total = 0.0
            if a.mode == "memory":
                perm = torch.randperm(len(ds), generator=gen)
                for s in range(0, len(ds), a.batch):
                    total += float(x_all[perm[s:s + a.batch]].sum())
            else:
                # persistent workers outlive the loop, so a short epoch's workers are still there to
                # be sampled during the pause below (a 200-image epoch can end within one sampling
                # interval, and its workers were then missed: a flaky test)
                loader = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, generator=gen,
                                                     num_workers=a.workers, persistent_workers=a.workers > 0)
                for xb, _ in loader:
                    total += float(xb.sum())
                times["epoch_s"] = time.perf_counter() - t0
                time.sleep(pause)
                del loader
            extra["pixel_mean"] = total / (len(ds) * ds.channels * ds.image_size ** 2)
        else:
            from xcausal.models.cmcl import CMCL

            cm = CMCL(epochs=1, batch_size=a.batch, seed=0, device="cpu", dag_refit=False,
                      data_loading="stream" if a.mode == "cache" else a.mode, num_workers=a.workers)
            cm.fit(ds)
            extra["time_parts"] = dict(getattr(cm, "time_parts_", {}))
            del cm
        times.setdefault("epoch_s", time.perf_counter() - t0)
        gc.collect()  # shut down and reap the DataLoader workers, so that their CPU time is counted
        times["epoch_cpu_s"] = _cpu_s() - c0
    _phase("done", pause)
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("result " + json.dumps({**times, **extra, "maxrss_main_mb": self_kb / 1024.0,
                                  "maxrss_worker_mb": kids_kb / 1024.0, "machine": machine(),
                                  "torch_threads": torch.get_num_threads()}), flush=True)


# --------------------------------------------------------------------------- parent
def _rollup(pid: int) -> dict[str, int] | None:
    """Rss, Pss, Pss_Anon (kB) of one process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].rstrip(":") in ("Rss", "Pss", "Pss_Anon", "Anonymous"):
            out[parts[0].rstrip(":")] = int(parts[1])
    if "Pss_Anon" not in out:  # kernels before 5.x: private anonymous pages are close enough
        out["Pss_Anon"] = out.get("Anonymous", 0)
    return out


def run_measured(cmd: list[str], interval: float, nice: int, timeout: float) -> dict:
    """Run ``cmd``, sampling its process tree's memory; returns the child's result and the peaks."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.nice(nice)) if nice else None)
    phase = ["start"]
    result: dict = {}
    err_lines: list[str] = []

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("phase "):
                phase[0] = line.split()[1]
            elif line.startswith("result "):
                result.update(json.loads(line[len("result "):]))

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            del err_lines[:-40]

    readers = [threading.Thread(target=read_stdout, daemon=True), threading.Thread(target=read_stderr, daemon=True)]
    for t in readers:
        t.start()
    peaks: dict[str, dict[str, float]] = {}
    n_samples, max_procs = 0, 0
    t_end = time.monotonic() + timeout
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        if time.monotonic() > t_end:
            proc.kill()
            raise RuntimeError(f"timed out after {timeout:.0f} s: {shlex.join(cmd)}")
        try:
            pids = [proc.pid] + [c.pid for c in root.children(recursive=True)]
        except psutil.Error:
            pids = [proc.pid]
        tot = {"Rss": 0, "Pss": 0, "Pss_Anon": 0}
        seen = 0
        for pid in pids:
            r = _rollup(pid)
            if r is not None:
                seen += 1
                for k in tot:
                    tot[k] += r.get(k, 0)
        if seen:
            n_samples += 1
            max_procs = max(max_procs, seen)
            p = peaks.setdefault(phase[0], {"pss_mb": 0.0, "anon_mb": 0.0, "rss_sum_mb": 0.0})
            p["pss_mb"] = max(p["pss_mb"], tot["Pss"] / 1024.0)
            p["anon_mb"] = max(p["anon_mb"], tot["Pss_Anon"] / 1024.0)
            p["rss_sum_mb"] = max(p["rss_sum_mb"], tot["Rss"] / 1024.0)
        time.sleep(interval)
    for t in readers:
        t.join(timeout=5)
    if proc.returncode != 0 or not result:
        raise RuntimeError(f"exit {proc.returncode}: {shlex.join(cmd)}\n" + "".join(err_lines[-20:]))
    result["peaks"] = peaks
    result["samples"] = n_samples
    result["max_processes"] = max_procs
    return result


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except OSError:
        return "?"


def parse_configs(spec: str) -> list[tuple[int, int]]:
    out = []
    for item in spec.split(","):
        n, _, size = item.strip().partition("x")
        out.append((int(n), int(size)))
    return out


def _fit_line(ns: list[int], ts: list[float]) -> tuple[float, float, float]:
    """Least-squares ``t = a + b n``: (a seconds, b microseconds per image, R^2)."""
    n, t = np.asarray(ns, float), np.asarray(ts, float)
    if len(n) < 2:
        return float("nan"), float("nan"), float("nan")
    b, a = np.polyfit(n, t, 1)
    resid = t - (a + b * n)
    ss = float(((t - t.mean()) ** 2).sum())
    return float(a), float(b * 1e6), (1.0 - float((resid ** 2).sum()) / ss) if ss > 0 else float("nan")


def summarise(rows: list[dict]) -> tuple[list[str], dict]:
    """Linearity of epoch time and growth of epoch-phase memory over N, per (runner, mode), at the
    smallest image size that has more than one N."""
    lines, verdicts = [], {}
    by_size: dict[int, set[int]] = {}
    for r in rows:
        by_size.setdefault(r["size"], set()).add(r["n"])
    sizes = [s for s, ns in sorted(by_size.items()) if len(ns) > 1]
    if not sizes:
        return lines, verdicts
    size = sizes[0]
    for runner in ("loader", "cmcl"):
        for mode in MODES:
            rs = sorted((r for r in rows if r["runner"] == runner and r["mode"] == mode and r["size"] == size),
                        key=lambda r: r["n"])
            if len(rs) < 2:
                continue
            a, b, r2 = _fit_line([r["n"] for r in rs], [r["epoch_s"] for r in rs])
            _, b_cpu, r2_cpu = _fit_line([r["n"] for r in rs], [r["epoch_cpu_s"] for r in rs])
            lo, hi = rs[0], rs[-1]
            grow = hi["peak_pss_mb"] - lo["peak_pss_mb"]
            grow_anon = hi["peak_anon_mb"] - lo["peak_anon_mb"]
            per_img_kb = grow * 1024.0 / (hi["n"] - lo["n"])
            key = f"{runner}/{mode}"
            verdicts[key] = {"size": size, "intercept_s": a, "us_per_image": b, "r2": r2,
                             "cpu_us_per_image": b_cpu, "cpu_r2": r2_cpu,
                             "pss_growth_mb": grow, "anon_growth_mb": grow_anon, "pss_growth_kb_per_image": per_img_kb,
                             "n_low": lo["n"], "n_high": hi["n"]}
            lines.append(f"| {runner} | {mode} | {b:.0f} | {a:.1f} | {r2:.4f} | {b_cpu:.0f} | {r2_cpu:.4f} | "
                         f"{lo['peak_pss_mb']:.0f} -> "
                         f"{hi['peak_pss_mb']:.0f} ({grow:+.0f}) | {grow_anon:+.0f} | {per_img_kb:.2f} |")
    return lines, verdicts


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/epoch_mem_data"), help="where datasets are simulated")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/epoch_memory"))
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated NxSIZE (default %(default)s)")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--runners", default="auto", help="comma-separated of loader,cmcl; auto = loader, plus cmcl "
                                                      "when CMCL has data_loading")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the measured process")
    ap.add_argument("--interval", type=float, default=0.05, help="memory sampling interval, seconds")
    ap.add_argument("--nice", type=int, default=10, help="niceness added to every measured subprocess")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per subprocess, seconds")
    # internal: one measured run
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--runner", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a)
        return {}

    command = "python benchmarks/epoch_memory.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    configs = parse_configs(a.configs)
    modes = [m for m in a.modes.split(",") if m]
    runners = list(RUNNERS) if a.runners == "auto" else [r for r in a.runners.split(",") if r]
    if a.runners == "auto" and not cmcl_supports_data_loading():
        runners.remove("cmcl")
        print("CMCL has no data_loading parameter yet: measuring the DataLoader only", flush=True)
    script = str(Path(__file__).resolve())
    commit = _git("rev-parse", "HEAD")  # at the start: another commit may land while this runs
    dirty = [ln[3:] for ln in _git("status", "--porcelain", "--", "src").splitlines()]
    started = time.perf_counter()
    rows: list[dict] = []
    gen_s: dict[str, float] = {}
    result_machine = None
    for n, size in configs:
        d = dataset_dir(a.data, n, size)
        gen_s[f"{n}x{size}"] = make_dataset(d, n, size)
        print(f"{n}x{size}: data in {d} ({gen_s[f'{n}x{size}']:.1f} s to simulate)", flush=True)
        plan = ([("build", "cache")] if "cache" in modes else []) + [(r, m) for r in runners for m in modes]
        for runner, mode in plan:
            cmd = [sys.executable, script, "--child", "--dir", str(d), "--size", str(size), "--mode", mode,
                   "--runner", runner, "--workers", str(a.workers), "--batch", str(a.batch),
                   "--threads", str(a.threads), "--interval", str(a.interval)]
            load_avg = os.getloadavg()[0]
            res = run_measured(cmd, a.interval, a.nice, a.timeout)
            result_machine = result_machine or res.pop("machine", None)
            res.pop("machine", None)
            peaks = res.pop("peaks")
            ph = "prepare" if runner == "build" else "epoch"
            p = peaks.get(ph, {"pss_mb": float("nan"), "anon_mb": float("nan"), "rss_sum_mb": float("nan")})
            overall = {k: max(v.get(k, 0.0) for v in peaks.values()) for k in ("pss_mb", "anon_mb", "rss_sum_mb")}
            epoch_s = res.get("epoch_s", res.get("prepare_s"))
            row = {"n": n, "size": size, "runner": runner, "mode": mode, "workers": a.workers,
                   "load_s": res["load_s"], "prepare_s": res["prepare_s"], "epoch_s": epoch_s,
                   "epoch_cpu_s": res.get("epoch_cpu_s", res.get("prepare_cpu_s")),
                   "images_per_s": n / epoch_s if epoch_s else float("nan"),
                   "epoch_pss_mb": p["pss_mb"], "epoch_anon_mb": p["anon_mb"], "epoch_rss_sum_mb": p["rss_sum_mb"],
                   "peak_pss_mb": overall["pss_mb"], "peak_anon_mb": overall["anon_mb"],
                   "peak_rss_sum_mb": overall["rss_sum_mb"],
                   "maxrss_main_mb": res["maxrss_main_mb"], "maxrss_worker_mb": res["maxrss_worker_mb"],
                   "processes": res["max_processes"], "samples": res["samples"], "load_avg_1m": load_avg}
            rows.append(row)
            print(f"  {runner:6s} {mode:6s} load {row['load_s']:6.1f} s  prepare {row['prepare_s']:6.1f} s  "
                  f"epoch {epoch_s:7.1f} s  PSS {p['pss_mb']:7.0f} MB  anon {p['anon_mb']:7.0f} MB  "
                  f"RSS-sum {p['rss_sum_mb']:7.0f} MB  ({res['max_processes']} proc.)", flush=True)
    total_s = time.perf_counter() - started
    lines, verdicts = summarise([r for r in rows if r["runner"] != "build"])
    commit_end = _git("rev-parse", "HEAD")
    res = {"machine": result_machine or machine(), "commit": commit,
           "commit_end": None if commit_end == commit else commit_end, "src_uncommitted": dirty,
           "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"), "command": command,
           "graph": GRAPH, "batch": a.batch, "workers": a.workers, "threads": a.threads, "interval_s": a.interval,
           "nice": a.nice, "generate_s": gen_s, "total_s": total_s, "rows": rows, "linearity": verdicts}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(res, indent=1))
    with open(a.out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (a.out / "README.md").write_text(_readme(res, lines))
    print(f"done in {total_s / 60:.1f} min; wrote {a.out}", flush=True)
    return res


def _readme(res: dict, lines: list[str]) -> str:
    table = ["| N | size | runner | mode | load s | prepare s | epoch s | epoch CPU s | images/s | peak PSS MB "
             "| peak anon MB | epoch PSS MB | peak RSS-sum MB | maxrss main / worker MB | load avg |",
             "|" + "---|" * 15]
    for r in res["rows"]:
        table.append(f"| {r['n']} | {r['size']} | {r['runner']} | {r['mode']} | {r['load_s']:.1f} | "
                     f"{r['prepare_s']:.1f} | {r['epoch_s']:.1f} | {r['epoch_cpu_s']:.1f} | {r['images_per_s']:.0f} | {r['peak_pss_mb']:.0f} | "
                     f"{r['peak_anon_mb']:.0f} | {r['epoch_pss_mb']:.0f} | {r['peak_rss_sum_mb']:.0f} | "
                     f"{r['maxrss_main_mb']:.0f} / {r['maxrss_worker_mb']:.0f} | {r['load_avg_1m']:.1f} |")
    dirty = (f" (uncommitted changes under src/: {', '.join(res['src_uncommitted'])})"
             if res["src_uncommitted"] else "")
    if res.get("commit_end"):
        dirty += f" (HEAD moved to {res['commit_end']} during the run)"
    lin = (["| runner | mode | wall µs / image (slope) | intercept s | R² | CPU µs / image | CPU R² | "
            "peak PSS MB, low N -> high N | peak anon growth MB | PSS growth kB / image |",
            "|---|---|---|---|---|---|---|---|---|---|"] + lines) if lines else []
    return "\n".join([
        "# One epoch vs N: time and peak memory, streamed / cached / in-memory images (issue #8, 6b)", "",
        f"Machine: {res['machine']}", "",
        f"Commit: {res['commit']}{dirty}; date {res['date']}; total {res['total_s'] / 60:.1f} min", "",
        f"Command: `{res['command']}`", "",
        f"Data: Appendix-E simulation (graph {res['graph']}, grayscale PNGs); batch {res['batch']}, "
        f"{res['workers']} DataLoader workers, {res['threads']} torch thread(s), measured processes at nice "
        f"+{res['nice']}, memory sampled every {res['interval_s'] * 1000:.0f} ms.", "",
        "Columns: *load* = load_dataset (table.csv + every image header); *prepare* = open/validate the cache "
        "(runner build: decode every PNG into it) or decode all images into RAM (loader/memory); *epoch* = one "
        "DataLoader pass (loader) or `CMCL(epochs=1).fit` (cmcl; for mode memory it includes decoding); "
        "*epoch CPU* = user + system CPU seconds of the process and its workers during the epoch (less "
        "sensitive than wall time to the other jobs on the machine). "
        "PSS = proportional set size summed over the process and its workers (shared pages counted once); "
        "anon = anonymous (heap) PSS, i.e. without shared libraries and without the page cache of the "
        "memory-mapped file; RSS-sum double-counts pages shared between the processes. *peak* = over the "
        "whole subprocess (load, prepare and epoch); *epoch PSS* = the peak during the epoch phase (build rows: "
        "during the build). *load avg* = the machine's 1-minute load average when the run started (other jobs "
        "share the 2 cores).", "",
        *table, "",
        "## Linear time, flat memory?", "",
        *lin, "",
    ]) + "\n"


if __name__ == "__main__":
    main()
