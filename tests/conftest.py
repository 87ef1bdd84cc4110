"""Shared fixtures: every test starts from the same seed."""

import pytest
import torch

from tvae_lib.utils import seed_everything


@pytest.fixture(autouse=True)
def seeded() -> torch.Generator:
    """Seed every generator before each test."""
    return seed_everything(0)


@pytest.fixture
def one_thread():
    """Run the test on one thread, then restore the thread count, so that the tests after it
    run with the count ``make unit`` set."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
