"""lhcbnn.device(): the environment override and the default."""

import pytest
import torch

import lhcbnn as lb


def test_default_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LHCBNN_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert lb.device().type == expected


def test_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LHCBNN_DEVICE", "cpu")
    assert lb.device() == torch.device("cpu")
    monkeypatch.setenv("LHCBNN_DEVICE", "not-a-device")
    with pytest.raises(ValueError, match="LHCBNN_DEVICE"):
        lb.device()


def test_training_puts_model_on_the_device() -> None:
    model = lb.BayesianMLP(1, 1, hidden=(4,))
    lb.train(model, torch.zeros(8, 1), torch.zeros(8, 1), n_epochs=1, progress=False)
    assert {p.device.type for p in model.parameters()} == {lb.device().type}


def test_training_is_seeded() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        model = lb.BayesianMLP(1, 1, hidden=(8,), heteroskedastic=True)
        x = torch.linspace(-1, 1, 64)[:, None]
        history = lb.train(model, x, x**2, n_epochs=3, batch_size=16, progress=False, seed=5)
        results.append(history.loss)
    assert results[0] == results[1]


def test_package_has_no_hard_coded_device() -> None:
    import pathlib
    import re

    package = pathlib.Path(lb.__file__).parent
    pattern = re.compile(r"""["']cuda["']|\.cuda\(\)|device=["']cpu["']""")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "device.py" and pattern.search(path.read_text())
    ]
    assert offenders == []
