"""Benchmark suites (``xcausal bench``): :func:`run_paper_bench` for the CMCL paper's Figure 2,
Table 1 and Table 2 on the Appendix-E simulator; :func:`run_realistic_bench` for the realistic
scenario families, judged by measuring the images."""

from xcausal.bench.paper import (
    PAPER_TABLE1,
    PAPER_TABLE2,
    VARIANTS,
    Cell,
    PaperBenchConfig,
    plan_cells,
    run_cell,
    run_paper_bench,
)
from xcausal.bench.realistic import RealisticBenchConfig, run_realistic_bench

__all__ = ["PaperBenchConfig", "Cell", "run_paper_bench", "plan_cells", "run_cell", "VARIANTS", "PAPER_TABLE1",
           "PAPER_TABLE2", "RealisticBenchConfig", "run_realistic_bench"]
