"""Shared fixtures: every test starts from the same seed."""

import pytest
import torch

from tvae_lib.utils import seed_everything


@pytest.fixture(autouse=True)
def seeded() -> torch.Generator:
    """Seed every generator before each test."""
    return seed_everything(0)
