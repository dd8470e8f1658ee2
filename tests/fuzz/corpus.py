"""The fixed fuzz corpus: every area's cases, in a stable order, with unique ids."""

import corpus_construct
import corpus_finite
import corpus_kernels
import corpus_linalg
import corpus_numerical
import corpus_predict
import corpus_sklearn_cli
import corpus_solvers
import corpus_stax
import scenarios

AREA_MODULES = (corpus_construct, corpus_kernels, corpus_numerical, corpus_predict, corpus_linalg, corpus_finite,
                corpus_sklearn_cli, corpus_stax, corpus_solvers)


def all_cases(quick: bool = False) -> list:
    """Every case. ``quick`` shortens the slow scenarios (two short Ctrl-C calls instead of all)."""
    cases = [case for module in AREA_MODULES for case in module.CASES] + scenarios.cases(quick)
    ids = [case.id for case in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate fuzz case ids: {duplicates}")
    return cases


def select(cases: list, areas=None, names=None) -> list:
    """The cases of the given areas (all if None) whose id contains one of ``names`` (all if None)."""
    return [c for c in cases if (not areas or c.area in areas) and (not names or any(n in c.id for n in names))]
