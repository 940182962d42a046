import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """train() sets torch's thread count from its config (threads=1 in the tests); put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
