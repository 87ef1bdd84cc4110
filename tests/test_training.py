from typing import NamedTuple

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tvae_lib import training


def _regression_data(n: int = 64):
    x = torch.randn(n, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def _mse_step(model, batch):
    x, y = batch
    loss = nn.functional.mse_loss(model(x), y)
    return {"loss": loss, "rmse": loss.detach().sqrt()}


def test_fit_learns_and_records_history():
    model = nn.Linear(3, 1)
    loader = _regression_data()
    history = training.fit(
        model,
        loader,
        _mse_step,
        epochs=30,
        val_loader=loader,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.1),
        progress=False,
    )
    assert history.epochs == 30
    assert set(history.metrics) == {"loss", "rmse", "val_loss", "val_rmse"}
    assert history["val_loss"][-1] < 0.01 * history["val_loss"][0]
    assert history.best_epoch is not None and not history.stopped_early
    assert "loss" in history and history.last()["loss"] == history["loss"][-1]


def test_fit_is_deterministic():
    def run():
        torch.manual_seed(0)
        model = nn.Linear(3, 1)
        training.fit(
            model,
            _regression_data(),
            _mse_step,
            epochs=3,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
            progress=False,
        )
        return model.weight.detach().clone()

    torch.testing.assert_close(run(), run())


def test_early_stopping_restores_best_weights():
    model = nn.Linear(3, 1)
    train_loader = _regression_data()
    val_x = torch.randn(32, 3)
    val_loader = [(val_x, torch.randn(32, 1) * 10)]  # unrelated targets: val loss stops improving
    history = training.fit(
        model,
        train_loader,
        _mse_step,
        epochs=200,
        val_loader=val_loader,
        optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
        patience=3,
        progress=False,
    )
    assert history.stopped_early and history.epochs < 200
    best_val = min(history["val_loss"])
    assert history["val_loss"][history.best_epoch] == best_val
    restored = training.evaluate(model, val_loader, _mse_step)["loss"]
    assert restored == pytest.approx(best_val, rel=1e-5)


def test_gradient_clipping_bounds_the_update():
    model = nn.Linear(3, 1, bias=False)
    nn.init.zeros_(model.weight)
    batch = [(torch.ones(1, 3) * 100, torch.ones(1, 1) * 1e4)]
    training.fit(
        model,
        batch,
        _mse_step,
        epochs=1,
        clip_grad_norm=1.0,
        optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
        progress=False,
    )
    assert float(model.weight.detach().norm()) == pytest.approx(1.0, rel=1e-4)


def test_on_epoch_start_and_scheduler_are_called():
    seen = []
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    training.fit(
        model,
        _regression_data(16),
        _mse_step,
        epochs=3,
        optimizer=optimizer,
        scheduler=scheduler,
        on_epoch_start=seen.append,
        progress=False,
    )
    assert seen == [0, 1, 2]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.125)


class Batch(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


def test_to_device_keeps_structure():
    batch = {
        "a": [torch.zeros(1), (torch.ones(2), "tag")],
        "b": Batch(torch.zeros(1), torch.ones(1)),
    }
    moved = training.to_device(batch, "cpu")
    assert isinstance(moved["b"], Batch) and moved["a"][1][1] == "tag"


def test_evaluate_restores_training_mode_and_weights_by_batch_size():
    model = nn.Linear(3, 1).train()
    batches = [(torch.zeros(3, 3), torch.ones(3, 1)), (torch.zeros(1, 3), torch.zeros(1, 1))]
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    assert training.evaluate(model, batches, _mse_step)["loss"] == pytest.approx(0.75)
    assert model.training


def test_bad_arguments():
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = _regression_data(16)
    with pytest.raises(ValueError, match="epochs"):
        training.fit(model, loader, _mse_step, epochs=0, optimizer=opt)
    with pytest.raises(ValueError, match="patience"):
        training.fit(model, loader, _mse_step, epochs=1, optimizer=opt, patience=0)
    with pytest.raises(ValueError, match="needs a val_loader"):
        training.fit(model, loader, _mse_step, epochs=1, optimizer=opt, patience=2)
    with pytest.raises(TypeError, match="'loss'"):
        training.fit(
            model, loader, lambda m, b: {"mse": torch.tensor(1.0)}, epochs=1, optimizer=opt
        )
    with pytest.raises(TypeError, match="scalar tensor"):
        training.fit(
            model,
            loader,
            lambda m, b: {"loss": m(b[0]).sum(), "x": 3},
            epochs=1,
            optimizer=opt,
            progress=False,
        )


def test_non_finite_loss_stops_with_clear_error():
    model = nn.Linear(3, 1)
    with pytest.raises(FloatingPointError, match="epoch 0"):
        training.fit(
            model,
            _regression_data(16),
            lambda m, b: {"loss": m(b[0]).sum() * float("nan")},
            epochs=1,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False,
        )


def test_scheduler_every_step_or_epoch():
    torch.manual_seed(0)
    x = torch.randn(32, 3)
    loader = [(x[i : i + 8], x[i : i + 8].sum(1, keepdim=True)) for i in range(0, 32, 8)]

    def step(model, batch):
        return {"loss": ((model(batch[0]) - batch[1]) ** 2).mean()}

    for every, expected in (("step", 8), ("epoch", 2)):
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: 1.0)
        training.fit(model, loader, step, epochs=2, optimizer=optimizer, scheduler=scheduler,
            scheduler_every=every, progress=False)  # fmt: skip
        assert scheduler.last_epoch == expected
    with pytest.raises(ValueError, match="scheduler_every must be one of"):
        training.fit(model, loader, step, epochs=1, optimizer=optimizer, scheduler_every="batch")
