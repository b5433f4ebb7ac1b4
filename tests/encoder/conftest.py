import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Reference modules and inputs come from torch's global RNG: make them repeatable."""
    torch.manual_seed(1234)
