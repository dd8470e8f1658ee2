"""Copies the license texts of the shared libraries a repaired wheel bundles into the package.

`maturin build --auditwheel repair` copies libopenblas, libgfortran and libquadmath into the wheel
(for users without a system BLAS); their licenses (BSD-3-Clause, GPL-3.0 with the GCC runtime
library exception, LGPL-2.1) require that their texts travel with them. Run this before the
repaired build: the texts land in python/ntkfast/licenses/ (not committed) and so in the wheel.

    python tools/bundle_licenses.py && maturin build --release --auditwheel repair ...
"""

from __future__ import annotations

import pathlib
import shutil
import sys

# Debian's copyright file of each bundled library's package
SOURCES = {
    "openblas.txt": "/usr/share/doc/libopenblas0-pthread/copyright",
    "gfortran.txt": "/usr/share/doc/libgfortran5/copyright",
    "quadmath.txt": "/usr/share/doc/libquadmath0/copyright",
}


def main() -> int:
    out = pathlib.Path(__file__).resolve().parent.parent / "python" / "ntkfast" / "licenses"
    out.mkdir(exist_ok=True)
    missing = [src for src in SOURCES.values() if not pathlib.Path(src).exists()]
    if missing:
        print(f"missing (install libopenblas-dev): {', '.join(missing)}", file=sys.stderr)
        return 1
    for name, src in SOURCES.items():
        shutil.copyfile(src, out / name)
    print(f"wrote {len(SOURCES)} license texts to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
