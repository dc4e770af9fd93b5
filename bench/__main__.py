"""`python -m bench`: the end-to-end benchmark of a Glance v2 image service.

Only the entry point; the harness lives in :mod:`bench.e2e` (see ``bench.e2e.cli``).
"""
from __future__ import annotations

import sys

from bench.e2e.cli import main

if __name__ == "__main__":
    sys.exit(main())
