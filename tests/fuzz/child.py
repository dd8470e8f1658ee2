"""Runs one fuzz case in this process and writes what happened to a JSON file.

Started by ``harness.py`` as ``python child.py SPEC.json REPORT.json``; SPEC holds the case's code
and the address-space cap. The code runs in ``__main__``'s namespace (so that functions it defines
can be pickled by reference into ``multiprocessing`` workers), after ``_PRELUDE``. If its last
statement is an expression, that value is the case's result, checked for non-finite numbers.

The report is written before the interpreter shuts down: a process that dies afterwards (a crash
during finalisation) is still seen as an abort by its exit status.
"""

import ast as _ast
import dataclasses as _dataclasses
import json as _json
import resource as _resource
import signal as _signal
import sys as _sys
import time as _time
import traceback as _traceback
import warnings as _warnings

# Names every case can use. Inputs are small; ``huge`` builds arbitrarily large inputs out of one
# element with ``np.broadcast_to``, so a case asks for a huge computation without the test itself
# allocating anything.
_PRELUDE = """
import math, os, sys, time, warnings
import numpy as np
import ntkfast
from ntkfast import MLP, Network, activations as A, linalg, predict
rng = np.random.default_rng(0)
X = rng.standard_normal((6, 3))
X2 = rng.standard_normal((4, 3))
Y = rng.standard_normal((6, 2))
y = rng.standard_normal(6)
K = MLP(2, "relu", W_std=1.5, b_std=0.1).kernel(X, get="ntk")
K_TEST = MLP(2, "relu", W_std=1.5, b_std=0.1).kernel(X2, X, get="ntk")
SPD = K + np.eye(6)

def huge(shape, value=1.0, dtype=np.float64):
    return np.broadcast_to(np.asarray(value, dtype=dtype), shape)

def cauchy_schwarz(k, rtol=1e-6):
    '''Asserts |k_ij| <= sqrt(k_ii k_jj): every valid kernel satisfies it.'''
    k = np.asarray(k, dtype=np.float64)
    d = np.sqrt(np.abs(np.diag(k)))
    excess = np.abs(k) - np.outer(d, d) * (1 + rtol)
    assert np.all(np.isfinite(k)), f"non-finite kernel entries: {k}"
    assert excess.max() <= 0, f"|k_ij| exceeds sqrt(k_ii k_jj) by {excess.max():.3g}: {k}"
    return k
"""

# Nested containers are walked this deep, and this many items of each, for non-finite values.
_MAX_DEPTH = 5
_MAX_ITEMS = 10_000


def _nonfinite(value, path="result", depth=0) -> list:
    """Where ``value`` (arrays, numbers, containers, ntkfast result objects) holds inf or NaN."""
    import numpy as np

    if depth > _MAX_DEPTH:
        return []
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and value.size:
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            if bad:
                return [f"{path}: {bad} of {value.size} entries non-finite"]
        return []
    if isinstance(value, (float, complex, np.floating, np.complexfloating)):
        return [] if np.isfinite(value) else [f"{path} = {value}"]
    if isinstance(value, dict):
        items = list(value.items())[:_MAX_ITEMS]
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))[:_MAX_ITEMS]
    elif _dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in _dataclasses.fields(value)]
    elif type(value).__module__.startswith("ntkfast"):
        # Kernel (slots), Network / LinearizedNetwork (their parameters), other result objects.
        names = list(getattr(type(value), "__slots__", ())) + list(getattr(value, "__dict__", {}))
        names += [n for n in ("params", "delta") if hasattr(type(value), n)]
        items = []
        for name in names:
            try:
                items.append((name, getattr(value, name)))
            except Exception:  # a property that cannot be read says nothing about finiteness
                pass
    else:
        return []
    found = []
    for key, item in items:
        found += _nonfinite(item, f"{path}[{key!r}]" if not isinstance(key, str) else f"{path}.{key}", depth + 1)
    return found


def _summary(value) -> str:
    """A one-line description of a result (shapes rather than contents for arrays)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}"
    if isinstance(value, (list, tuple)) and len(value) <= 8:
        return type(value).__name__ + "(" + ", ".join(_summary(v) for v in value) + ")"
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def _compile_case(code: str):
    """``code`` compiled so that a trailing expression is stored in ``__result__``."""
    tree = _ast.parse(code, "<case>", "exec")
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        last = tree.body[-1]
        tree.body[-1] = _ast.Assign(targets=[_ast.Name("__result__", _ast.Store())], value=last.value)
        _ast.copy_location(tree.body[-1], last)
        _ast.fix_missing_locations(tree)
    return compile(tree, "<case>", "exec")


def _run(spec: dict) -> dict:
    namespace = vars(_sys.modules["__main__"])
    namespace["__result__"] = None
    report = {}
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            exec(compile(_PRELUDE, "<prelude>", "exec"), namespace)
            code = _compile_case(spec["code"])
            start = _time.perf_counter()
            try:
                exec(code, namespace)
            finally:
                report["seconds"] = _time.perf_counter() - start
            result = namespace["__result__"]
            report.update(status="returned", nonfinite=_nonfinite(result), summary=_summary(result))
        except AssertionError as e:  # the case's own check of the result failed
            report.update(status="assertion", message=str(e), traceback=_traceback.format_exc(limit=-3))
        except BaseException as e:  # noqa: B036 -- KeyboardInterrupt and SystemExit are outcomes too
            report.update(status="raised", type=type(e).__name__, mro=[c.__name__ for c in type(e).__mro__],
                          message=str(e), traceback=_traceback.format_exc(limit=-3))
    report["warnings"] = [{"category": w.category.__name__, "message": str(w.message)} for w in caught]
    return report


def _main() -> None:
    spec_path, report_path = _sys.argv[1], _sys.argv[2]
    with open(spec_path) as f:
        spec = _json.load(f)
    # A harness started in the background of a non-interactive shell inherits SIGINT ignored, and
    # so would every Python process a case starts: give Ctrl-C its usual meaning back.
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    if spec.get("mem_bytes"):
        # A huge request fails at once instead of swapping; a Rust allocation failure under this
        # cap aborts the process, which is exactly the crash class the harness looks for.
        _resource.setrlimit(_resource.RLIMIT_AS, (spec["mem_bytes"], spec["mem_bytes"]))
    report = _run(spec)
    with open(report_path, "w") as f:
        _json.dump(report, f, default=str)


if __name__ == "__main__":
    _main()
