"""The billing reconciliation workload (issue 9): its pure core.

- :mod:`geo_recon.billing.events`: a seeded, pure generator of transactions and
  their events (order, payment, ledger ...), the ground truth of the business
  errors it injected, and the Pulsar message format of an event.
- :mod:`geo_recon.billing.reconciler`: the streaming join engine (watermarks,
  lateness, eviction, verdicts) and the per-topic read planner.
- :mod:`geo_recon.billing.classify`: labels every exception the reconciler
  reports as a business error, a replication loss or lag, or unexplained.
- :mod:`geo_recon.billing.reference`: an obviously-correct batch reconciler
  that the streaming engine is tested against.
- :mod:`geo_recon.billing.sim`: pure simulation of delivery to a reconciling
  region (transport delays, lost and late events) used by tests and the bench.
- :mod:`geo_recon.billing.bench`: the engine benchmark behind
  ``geo-recon billing bench``.

Nothing here does I/O; the Pulsar workers that publish and consume the events
are wired around these functions.
"""
