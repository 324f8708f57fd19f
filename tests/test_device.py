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


def test_training_leaves_the_model_on_its_device() -> None:
    """lb.train trains where the model is (see also test_predict's meta-device test)."""
    model = lb.BayesianMLP(1, 1, hidden=(4,)).double()
    where = {(p.device, p.dtype) for p in model.parameters()}
    lb.train(model, torch.zeros(8, 1), torch.zeros(8, 1), n_epochs=1, progress=False)
    assert {(p.device, p.dtype) for p in model.parameters()} == where


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
