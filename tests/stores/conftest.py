"""Make the repository root importable for the store tests.

pytest's default import mode puts only the test file's own directory on sys.path, and the
project is not installed into the venv; the store packages (`stores`, `tests.stores.contract`)
are imported from the checkout. Redundant (and harmless) once pyproject sets `pythonpath`.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
