"""Benchmarks of cas-glance.

Two kinds live here: pytest-benchmark micro benches (``bench/test_*.py``, one per measured
module) and the end-to-end harness (``bench/e2e``, run as ``python -m bench``) that drives a
whole Glance v2 server over HTTP.
"""
