"""End-to-end benchmark of a Glance v2 image service (cas-glance or any other).

Modules, one concern each:

* ``cli``       flags, option resolution (``--quick``), the run's top level and output
* ``settings``  the frozen settings of a run, full and quick defaults
* ``glance``    the HTTP client: one aiohttp session, every status code checked
* ``server``    start/stop a local ``cas-glance serve``; read its stats (stored bytes)
* ``monitor``   server CPU seconds and peak RSS from /proc/<pid> while a phase runs
* ``data``      data generation: non-dedupable random streams, the seeded snapshot series
* ``transfer``  single-stream upload/download and concurrent upload phases
* ``series``    snapshot-series and directory-series ingest (logical vs stored bytes)
* ``listing``   ``GET /v2/images`` latency with many images present
* ``figures``   medians and percentiles
* ``report``    figure catalogue, Glance reference and targets, terminal table, JSON
* ``progress``  a dependency-free progress bar on stderr
* ``plot``      optional matplotlib chart of the series

Invariant: the client stays cheap (client and server share the machine), so no per-byte
Python work and no hashing on the timed path.
"""
