import pytest
import torch

from tvae_lib import utils


def test_seed_everything_repeats_random_draws():
    utils.seed_everything(123)
    first = torch.randn(5)
    utils.seed_everything(123)
    torch.testing.assert_close(torch.randn(5), first)


def test_seed_everything_returns_seeded_generator():
    a = torch.randn(3, generator=utils.seed_everything(7))
    b = torch.randn(3, generator=utils.seed_everything(7))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("seed", "error"), [(-1, ValueError), (1.5, TypeError), ("0", TypeError),
                                             (True, TypeError)])  # fmt: skip
def test_seed_everything_rejects_bad_seed(seed, error):
    with pytest.raises(error, match="seed must be"):
        utils.seed_everything(seed)


def test_get_device_cpu_and_env(monkeypatch):
    assert utils.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("TVAE_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")


def test_get_device_default_is_available_device(monkeypatch):
    monkeypatch.delenv("TVAE_DEVICE", raising=False)
    device = utils.get_device()
    torch.zeros(1, device=device)  # the chosen device really works
    expected = "cuda" if torch.cuda.is_available() else device.type
    assert device.type == expected


def test_get_device_rejects_unknown_and_unavailable():
    with pytest.raises(ValueError, match="prefer"):
        utils.get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            utils.get_device("cuda")


def test_count_parameters():
    model = torch.nn.Linear(3, 2)
    assert utils.count_parameters(model) == 8
    model.bias.requires_grad_(False)
    assert utils.count_parameters(model) == 6
    assert utils.count_parameters(model, trainable_only=False) == 8


def test_show_source_renders_library_code():
    shown = utils.show_source(utils.count_parameters)
    assert shown.data.startswith("```python\ndef count_parameters(")
    assert shown.data.endswith("```")
    with pytest.raises(TypeError, match="function, class or method"):
        utils.show_source(3)


def test_progress_switch(monkeypatch):
    from tvae_lib.utils import progress_enabled

    monkeypatch.delenv("TVAE_PROGRESS", raising=False)
    assert progress_enabled()
    monkeypatch.setenv("TVAE_PROGRESS", "0")
    assert not progress_enabled()
    monkeypatch.setenv("TVAE_PROGRESS", "1")
    assert progress_enabled()
