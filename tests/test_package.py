"""The package's namespace: lazy submodules and the public names."""

import importlib
import sys
from pathlib import Path

import pytest

import lhcbnn as lb


def test_missing_submodule_is_an_attribute_error() -> None:
    assert not hasattr(lb, "no_such_module")
    with pytest.raises(AttributeError, match="no_such_module"):
        lb.no_such_module  # noqa: B018
    if importlib.util.find_spec("lhcbnn.flows") is None:
        assert not hasattr(lb, "flows")


def test_existing_submodules_load_lazily() -> None:
    for name in ("data", "stats", "reweight", "plotting", "softclip"):
        assert getattr(lb, name) is sys.modules[f"lhcbnn.{name}"]


def test_an_import_error_inside_a_submodule_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_probe.py").write_text("import lhcbnn_no_such_dependency\n")
    monkeypatch.setattr(lb, "__path__", [*lb.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "lhcbnn.broken_probe", raising=False)
    with pytest.raises(ModuleNotFoundError, match="lhcbnn_no_such_dependency"):
        lb.broken_probe  # noqa: B018
    sys.modules.pop("lhcbnn.broken_probe", None)


def test_the_sphinx_hook_is_not_runtime_code() -> None:
    import lhcbnn.book

    assert not hasattr(lhcbnn.book, "setup")
    assert callable(importlib.import_module("lhcbnn._sphinx").setup)
