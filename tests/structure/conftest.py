"""Fixtures for the structure tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run each structure test on one intra-op thread, restoring the previous setting afterwards.

    The models here are tiny (d <= 10, n = 1000): torch's thread pool only adds synchronisation
    cost, which becomes severe (x100 per op measured) when the machine's other core is busy.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
