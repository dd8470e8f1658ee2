"""pytest entry of the fuzz harness: every corpus case in its own process, one test per case.

The cases run once per session, two processes at a time (``NTKFAST_FUZZ_JOBS`` to change it),
when the first of them is set up; each test then reports its own case. ``-k`` selects cases by
id (``-k "linalg and huge"``) and only the selected ones run. The full Ctrl-C latency set runs
with ``python tests/fuzz/run.py``; here two short calls stand for it.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # harmless under prepend import mode

import corpus  # noqa: E402
import harness  # noqa: E402

CASES = corpus.all_cases(quick=True)


@pytest.fixture(scope="module")
def results(request):
    selected = [item.callspec.params["case"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")]
    jobs = int(os.environ.get("NTKFAST_FUZZ_JOBS", "2"))
    return {r.case.id: r for r in harness.run_cases(selected, jobs=jobs)}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case, results):
    result = results[case.id]
    if not result.passed:
        tail = (result.report or {}).get("traceback", "") if result.report else result.stderr
        tail = "\n".join(tail.strip().splitlines()[-6:])
        pytest.fail(f"{case.id}: {result.explain()}\n\n{case.code.strip()}\n\n{tail}", pytrace=False)
