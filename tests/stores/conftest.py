"""Make `tests.stores.contract` importable for the store test modules.

pytest's default import mode puts only a test file's own directory on sys.path, and the
editable install exposes the project packages but not `tests`. Redundant (and harmless) when
tests/conftest.py or pyproject's `pythonpath` already puts the checkout on sys.path.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
