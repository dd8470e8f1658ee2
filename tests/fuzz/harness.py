"""Subprocess-isolated fuzz harness: runs each case in its own Python process and classifies it.

A case is a code snippet (run by ``child.py`` after a prelude of small inputs) and what is
acceptable for it. Every case gets its own process, a timeout (hang detection) and an
address-space cap (RLIMIT_AS), so a crash, an abort or a runaway allocation is an outcome of that
case rather than the end of the run.

Outcomes:

* ``ok``: returned, every float in the result finite (and the case's own asserts held);
* ``nonfinite``: returned inf or NaN without complaint;
* ``wrong``: returned, but the case's own ``assert`` on the result failed;
* ``error``: raised an accepted exception type whose message names one of the expected
  arguments (or any exception, when the case expected a result);
* ``bad_message``: raised, but the message names none of the expected arguments (a bare
  ``OverflowError`` from an int conversion, a raw NumPy message, ...);
* ``wrong_error``: raised an exception that names the argument but is of a type not accepted
  (``ValueError`` where ``KeyboardInterrupt`` must propagate, ...);
* ``panic``: a Rust panic (``PanicException``, or ``RuntimeError: internal error ...``);
* ``abort``: killed by a signal, a "Fatal Python error", or an exit without a report;
* ``hang``: no result within the case's timeout.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Union

CHILD = Path(__file__).with_name("child.py")
OUTCOMES = ("ok", "error", "nonfinite", "wrong", "bad_message", "wrong_error", "panic", "abort", "hang")
DEFAULT_TIMEOUT = 30.0
# Enough for every legitimate case (the largest needs ~2.5 GB) and far below what the huge cases
# request (40 GB and up, more than the machine has), so a MemoryError is never an artefact of it.
DEFAULT_MEM_GIB = 8.0


@dataclasses.dataclass(frozen=True)
class Expect:
    """One acceptable behaviour of a case.

    ``outcome="ok"``: returns finite results; with ``warning`` set, it must also issue a warning
    of that category (``|``-separated alternatives) naming one of ``names``.
    ``outcome="error"``: raises one of ``types`` (a class name or the name of a base class)
    whose message names one of ``names`` (any message if ``names`` is empty).
    """

    outcome: str
    types: tuple = ()
    names: tuple = ()
    warning: Optional[str] = None

    def describe(self) -> str:
        if self.outcome == "ok":
            if self.warning:
                return f"a finite result with a {self.warning} naming {' or '.join(self.names)}"
            return "a finite result"
        named = f" naming {' or '.join(self.names)}" if self.names else ""
        return f"{'|'.join(self.types)}{named}"


def ok() -> Expect:
    """Returns, and every array or number in the result is finite."""
    return Expect("ok")


def raises(types: str, *names: str) -> Expect:
    """Raises one of ``types`` (``"ValueError|MemoryError"``) with a message naming one of ``names``."""
    return Expect("error", tuple(types.split("|")), names)


def warns(category: str, *names: str) -> Expect:
    """Returns finite results and warns (``category``, ``|``-separated) naming one of ``names``."""
    return Expect("ok", (), names, category)


@dataclasses.dataclass(frozen=True)
class Case:
    """A snippet and its acceptable behaviours.

    ``threads``: RAYON/OpenBLAS threads of the child (1 keeps parallel runs light; None leaves the
    library's default, for cases about the thread pool itself). ``mem_gib``: its address-space cap.
    """

    area: str
    name: str
    code: str
    expect: Union[Expect, tuple]
    timeout: float = DEFAULT_TIMEOUT
    threads: Optional[int] = 1
    mem_gib: float = DEFAULT_MEM_GIB

    def __post_init__(self):
        expect = self.expect if isinstance(self.expect, tuple) else (self.expect,)
        if not expect or not all(isinstance(e, Expect) for e in expect):
            raise TypeError(f"{self.id}: expect must be Expect objects (ok(), raises(...), warns(...))")
        object.__setattr__(self, "expect", expect)

    @property
    def id(self) -> str:
        return f"{self.area}/{self.name}"


@dataclasses.dataclass
class Result:
    case: Case
    outcome: str
    passed: bool
    detail: str  # what happened, in one line (the exception, the non-finite entries, ...)
    seconds: float
    returncode: Optional[int]
    report: Optional[dict]
    stderr: str

    def explain(self) -> str:
        """Why a failing case failed: what it did against what was acceptable."""
        wanted = " or ".join(e.describe() for e in self.case.expect)
        return f"{self.outcome}: {self.detail} (expected {wanted})"


def names_in(message: str, names: Iterable[str]) -> bool:
    """Whether ``message`` contains one of ``names`` as a whole word (``x`` is not in ``x1``)."""
    names = tuple(names)
    return not names or any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message) for n in names)


def _type_accepted(expect: Expect, report: dict) -> bool:
    return any(t in report["mro"] for t in expect.types)


def _error_outcome(case: Case, report: dict) -> str:
    """Classifies a raised (non-panic) exception against the case's error expectations."""
    errors = [e for e in case.expect if e.outcome == "error"]
    if not errors:
        return "error"  # expected a result: any exception fails the case
    message = report["message"]
    if any(_type_accepted(e, report) and names_in(message, e.names) for e in errors):
        return "error"
    if any(_type_accepted(e, report) for e in errors):
        return "bad_message"  # the right kind of exception, but it does not say which argument
    if any(e.names and names_in(message, e.names) for e in errors):
        return "wrong_error"  # names the argument, but is an exception the case does not accept
    # names nothing the case expects (an AttributeError from deep inside, a bare OverflowError),
    # or is not the KeyboardInterrupt/SystemExit that had to propagate unchanged
    return "bad_message" if any(e.names for e in errors) else "wrong_error"


def classify(case: Case, report: Optional[dict], returncode: Optional[int], stderr: str,
             timed_out: bool) -> tuple:
    """(outcome, one-line detail) of a finished (or killed) child."""
    if timed_out:
        return "hang", f"no result within {case.timeout:g} s"
    if returncode is not None and returncode < 0:
        return "abort", f"killed by {signal.Signals(-returncode).name}: {_last_line(stderr)}"
    if "Fatal Python error" in stderr:
        return "abort", _last_line(stderr, "Fatal Python error")
    if report is None or returncode != 0:
        return "abort", f"exit code {returncode} without a report: {_last_line(stderr)}"
    status = report["status"]
    if status == "returned":
        if report["nonfinite"]:
            return "nonfinite", "; ".join(report["nonfinite"][:3])
        return "ok", report["summary"]
    if status == "assertion":
        return "wrong", report["message"][:500]
    message = f"{report['type']}: {report['message'][:400]}"
    internal = "RuntimeError" in report["mro"] and "internal error" in report["message"]
    if report["type"] == "PanicException" or internal:
        return "panic", message
    return _error_outcome(case, report), message


def accepted(case: Case, outcome: str, report: Optional[dict]) -> bool:
    """Whether the outcome is one the case declares acceptable."""
    for e in case.expect:
        if e.outcome == "ok" and outcome == "ok":
            if e.warning is None:
                return True
            categories = e.warning.split("|")
            if any(w["category"] in categories and names_in(w["message"], e.names) for w in report["warnings"]):
                return True
        if e.outcome == "error" and outcome == "error" and _type_accepted(e, report) and \
                names_in(report["message"], e.names):
            return True
    return False


def _last_line(text: str, containing: str = "") -> str:
    lines = [line for line in text.strip().splitlines() if containing in line]
    return lines[-1][:300] if lines else "(no output)"


def _child_env(threads: Optional[int]) -> dict:
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    if threads is not None:
        for var in ("RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            env[var] = str(threads)
    return env


def run_case(case: Case, python: str = sys.executable) -> Result:
    """Runs ``case`` in a fresh process (its own session, so that it and everything it starts can
    be killed together) in a scratch directory, and classifies what happened."""
    with tempfile.TemporaryDirectory(prefix="ntkfast-fuzz-") as tmp:
        spec_path, report_path = os.path.join(tmp, "spec.json"), os.path.join(tmp, "report.json")
        with open(spec_path, "w") as f:
            json.dump({"code": case.code, "mem_bytes": int(case.mem_gib * 2**30)}, f)
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen([python, str(CHILD), spec_path, report_path], cwd=tmp, stdout=out,
                                    stderr=err, stdin=subprocess.DEVNULL, env=_child_env(case.threads),
                                    start_new_session=True)
            timed_out = False
            try:
                proc.wait(timeout=case.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            # Also ends whatever the case left running (a hung forked child, pool workers).
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        seconds = time.perf_counter() - start
        with open(err_path, errors="replace") as f:
            stderr = f.read()[-4000:]
        report = None
        if not timed_out and os.path.exists(report_path):
            with open(report_path) as f:
                text = f.read()
            try:
                report = json.loads(text)
            except ValueError:  # cut short while writing it: classified as an abort below
                report = None
    outcome, detail = classify(case, report, None if timed_out else proc.returncode, stderr, timed_out)
    return Result(case, outcome, accepted(case, outcome, report), detail, seconds,
                  None if timed_out else proc.returncode, report, stderr)


def run_cases(cases: list, jobs: int = 2, on_result: Optional[Callable[[Result], None]] = None) -> list:
    """Runs ``cases`` with at most ``jobs`` children at a time; results in the order of ``cases``.
    Slow cases (long timeouts) start first so that they do not end the run alone."""
    order = sorted(range(len(cases)), key=lambda i: -cases[i].timeout)
    results: list = [None] * len(cases)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_case, cases[i]): i for i in order}
        for future in concurrent.futures.as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_result is not None:
                on_result(result)
    return results


def table(results: list) -> str:
    """A Markdown table of cases per area x outcome, with pass/fail counts."""
    areas = sorted({r.case.area for r in results}, key=lambda a: min(i for i, r in enumerate(results)
                                                                        if r.case.area == a))
    columns = [o for o in OUTCOMES if any(r.outcome == o for r in results)]
    head = ["area", "cases", "pass", "fail"] + columns
    rows = []
    for area in areas + ["total"]:
        group = [r for r in results if area in ("total", r.case.area)]
        counts = [sum(r.outcome == o for r in group) for o in columns]
        rows.append([area, len(group), sum(r.passed for r in group), sum(not r.passed for r in group)] + counts)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) if c != 0 else "." for c in row) + " |" for row in rows]
    return "\n".join(lines)


def failure_report(results: list, verbose: bool = True) -> str:
    """Every failing case: what it did against what was acceptable, its code, and (with
    ``verbose``) the tail of its stderr or traceback."""
    out = []
    for r in results:
        if r.passed:
            continue
        out.append(f"- **{r.case.id}** ({r.seconds:.1f} s) {r.explain()}")
        if verbose:
            code = r.case.code.strip()
            out.append("  ```python\n" + "\n".join("  " + line for line in code.splitlines()) + "\n  ```")
            tail = (r.report or {}).get("traceback", "") if r.outcome not in ("abort", "hang") else r.stderr
            tail = "\n".join(tail.strip().splitlines()[-6:])
            if tail:
                out.append("  ```\n" + "\n".join("  " + line for line in tail.splitlines()) + "\n  ```")
    return "\n".join(out)
