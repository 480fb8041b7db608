"""The continuous canary: cross-region loss, lag and exposure, watched all the time.

- :mod:`~geo_recon.canary.checker`: the streaming checker (pure; watermarks, bounded state, checkpoints)
- :mod:`~geo_recon.canary.anomalies`, :mod:`~geo_recon.canary.cases`, :mod:`~geo_recon.canary.explanations`:
  one name per anomaly, the data of each case, and its words, apart
- :mod:`~geo_recon.canary.metrics`: Prometheus exposition (``prometheus_client``), ``/metrics`` and ``/healthz``
- :mod:`~geo_recon.canary.runner`: producers and consumers per region feeding the checker; checkpoints
- :mod:`~geo_recon.canary.sim`, :mod:`~geo_recon.canary.bench`: the simulated soak benchmark
- ``monitoring/``: Prometheus alert rules and a Grafana dashboard

Nothing is imported here: ``geo-recon canary`` loads what a command needs.
"""
