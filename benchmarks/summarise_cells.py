"""Summarise cached benchmark cells (e.g. of an unfinished run) into results.md.

    python benchmarks/summarise_cells.py benchmarks/results/cmcl_5-10 [--header "text"]
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from cmcl_synthetic import summarise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--header", default="")
    a = ap.parse_args()
    rows = [json.loads(p.read_text()) for p in sorted((a.out / "cells").glob("*.json"))]
    df = pd.DataFrame([{k: v for k, v in r.items() if k not in ("w_raw", "true_edges")} for r in rows])
    text = (a.header + "\n\n" if a.header else "") + summarise(df)
    (a.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
