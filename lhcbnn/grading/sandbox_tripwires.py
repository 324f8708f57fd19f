"""Tripwires on the reference implementations, set inside the sandbox (standard library only).

A task may forbid names (:attr:`lhcbnn.grading.tasks.base.Task.forbidden`): the functions
of ``lhcbnn`` and ``torch`` that would answer it without doing the work (``kl_gaussian``,
``gaussian_nll_loss``, ``log_prob``, ...). A scan of the task's own ``def`` misses every
indirect route: a helper, an alias, ``getattr`` with a built string, ``import lhcbnn.losses
as L`` inside the function. The runner therefore traps the functions themselves and arms the
traps only while that task's cases run: any call in that time is recorded with the line of
the student's code that led to it, whatever path it took.

How a function is trapped, so that every reference to it goes through the trap, including
aliases taken before the traps were set:

* a Python function: its ``__code__`` is replaced in place by a trampoline that records the
  call when armed and then calls a copy of the original; the function object stays the same;
* a class: the same for its ``__init__`` (a wrapper is set when ``__init__`` is inherited);
* a built-in: the module attribute is replaced by a recording wrapper (an alias taken
  earlier escapes; none of the current forbidden names is a built-in).

The recorded calls go into the report; the grader (not this code) takes the task's points.
Code determined to cheat could still reach the copies (they live in the trampolines'
defaults) or re-read the package's source; the traps catch the shortcuts students take.
"""

from __future__ import annotations

import sys
import types
import warnings

__all__ = ["Tripwires"]

PREFIXES = ("lhcbnn", "torch")
_KEYWORD = "__lhcbnn_tripwire__"


def _trampoline_code(n_free: int) -> types.CodeType:
    """The code of ``def f(*args, __lhcbnn_tripwire__, **kwargs)`` with ``n_free`` free
    variables (a function's new code must have as many as its closure has cells)."""
    names = [f"_free{k}" for k in range(n_free)]
    lines = ["def outer():"]
    lines += [f"    {name} = None" for name in names]
    lines.append(f"    def trampoline(*args, {_KEYWORD}=None, **kwargs):")
    if names:
        lines.append(f"        ({', '.join(names)},)")
    lines.append(f"        return {_KEYWORD}(args, kwargs)")
    lines.append("    return trampoline")
    namespace: dict = {}
    exec("\n".join(lines), namespace)  # noqa: S102 - fixed source, no input
    return namespace["outer"]().__code__


def _student_line() -> str:
    """``cell N, line L: code`` of the innermost frame of the student's code."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<cell"):
            return f"{name[1:-1]}, line {frame.f_lineno}"
        frame = frame.f_back
    return ""


class Tripwires:
    """Traps on every function of ``lhcbnn``/``torch`` whose name is in ``names``."""

    def __init__(self, names: set[str]) -> None:
        self.armed: frozenset[str] = frozenset()
        self.calls: list[tuple[str, str]] = []
        self.trapped: list[str] = []
        self._seen: set[int] = set()
        self.names = set(names)
        if names:
            self._install(names)

    def arm(self, names: set[str] | frozenset[str]) -> None:
        """Record calls of ``names`` from now on (and only of those); clears the record."""
        self.armed = frozenset(names)
        self.calls = []

    def disarm(self) -> list[tuple[str, str]]:
        """Stop recording; returns ``[(qualified name, student's line), ...]``."""
        calls, self.armed, self.calls = self.calls, frozenset(), []
        return calls

    def _record(self, short: str, qualified: str) -> None:
        if short in self.armed and len(self.calls) < 20:
            self.calls.append((qualified, _student_line()))

    def _install(self, names: set[str]) -> None:
        for key, module in list(sys.modules.items()):
            if module is not None and key.split(".")[0] in PREFIXES:
                self.scan(module)
        sys.meta_path.insert(0, _TrapNewModules(self))

    def scan(self, module: types.ModuleType) -> None:
        """Trap the forbidden functions, classes and methods defined in ``module``."""
        names = self.names
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                namespace = dict(vars(module))
            except TypeError:
                return
            for key, value in namespace.items():
                if key in names:
                    self._trap(module, key, value)
                if isinstance(value, type) and _ours(value):
                    for method in names & set(vars(value)):
                        self._trap(value, method, vars(value)[method])

    def _trap(self, owner: object, name: str, value: object) -> None:
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if id(value) in self._seen:
            return
        self._seen.add(id(value))
        qualified = f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', name)}"
        if isinstance(value, types.FunctionType):
            if value.__code__.co_filename.startswith("<"):
                return  # defined by the student's code (e.g. assigned into lhcbnn): not ours
            self._swap_code(value, name, qualified)
        elif isinstance(value, type):
            init = value.__dict__.get("__init__")
            if isinstance(init, types.FunctionType):
                self._swap_code(init, name, qualified)
            else:
                self._wrap_init(value, name, qualified)
        elif callable(value) and not isinstance(owner, type):
            self._wrap_attribute(owner, name, value, qualified)

    def _swap_code(self, function: types.FunctionType, short: str, qualified: str) -> None:
        original = types.FunctionType(
            function.__code__,
            function.__globals__,
            function.__name__,
            function.__defaults__,
            function.__closure__,
        )
        original.__kwdefaults__ = function.__kwdefaults__
        record = self._record

        def through(args: tuple, kwargs: dict) -> object:
            record(short, qualified)
            return original(*args, **kwargs)

        try:
            function.__code__ = _trampoline_code(len(function.__closure__ or ()))
            function.__kwdefaults__ = {_KEYWORD: through}
        except (TypeError, ValueError, AttributeError):
            return
        self.trapped.append(qualified)

    def _wrap_init(self, cls: type, short: str, qualified: str) -> None:
        inherited = cls.__init__
        record = self._record

        def __init__(self, *args, **kwargs):  # noqa: ANN001, ANN202, N807
            record(short, qualified)
            inherited(self, *args, **kwargs)

        try:
            cls.__init__ = __init__
        except (TypeError, AttributeError):
            return
        self.trapped.append(qualified)

    def _wrap_attribute(self, owner: object, name: str, value: object, qualified: str) -> None:
        record = self._record

        def wrapper(*args, **kwargs):  # noqa: ANN202
            record(name, qualified)
            return value(*args, **kwargs)

        try:
            setattr(owner, name, wrapper)
        except (TypeError, AttributeError):
            return
        self.trapped.append(qualified)


def _ours(cls: type) -> bool:
    return str(getattr(cls, "__module__", "")).split(".")[0] in PREFIXES


class _TrapNewModules:
    """A meta-path finder: modules of ``lhcbnn``/``torch`` imported later (lazy submodules,
    an import inside the student's function) are scanned right after they execute."""

    def __init__(self, tripwires: Tripwires) -> None:
        self.tripwires = tripwires

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname.split(".")[0] not in PREFIXES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _ScanAfterExec(loader, self.tripwires)
        return spec


class _ScanAfterExec:
    def __init__(self, loader: object, tripwires: Tripwires) -> None:
        self.loader, self.tripwires = loader, tripwires

    def create_module(self, spec: object) -> object:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        self.tripwires.scan(module)

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)
