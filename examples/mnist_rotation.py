"""Figure 4 of the CMCL paper: `examples/mnist_intervention.py --kind rotate`.

    python examples/mnist_rotation.py --out mnist_rotate_out [--n 1000] [--epochs E] [--seed 0] [--figures docs/figures] [--decoder pose|conv]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist_intervention import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(kind="rotate"))
