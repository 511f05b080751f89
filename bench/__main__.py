"""Run every benchmark that exists (`make bench`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)])
                   if not m.name.startswith("_") and m.name != "report")
    if not names:
        print("no benchmarks yet")
        return 0
    for name in names:
        print(f"== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        module.main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
