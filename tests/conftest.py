"""Fixtures shared by the test packages."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Run a test on one intra-op torch thread, restoring the previous setting afterwards.

    The models in the tests are tiny: torch's thread pool only adds synchronisation cost, which
    becomes severe (measured: x10 per fit, x100 per op) when the machine's other core is busy.
    Use it per module with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
