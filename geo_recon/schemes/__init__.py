"""Put a deployment into one of the cross-region schemes, and prove it is in it.

``apply`` changes only what differs and returns the list of changes (empty on
a second run). ``verify`` trusts nothing that was sent: it reads every setting
back from every region and, for the strong scheme, writes to a topic and reads
the BookKeeper ledger placement back to prove that every write set spans at
least two regions. A check that fails is a failure, never a warning.

async: every cluster registers every peer; a tenant allowed in all clusters; a
namespace replicated to all of them; deduplication on or off as asked.
strong: one cluster; every bookie labelled ``/<region>/rack-1``; brokers with
region-aware placement; the namespace's persistence (ensemble, write and ack
quorum) such that an ack needs bookies in two regions.

Both: infinite retention in the test namespace, so the end-of-run drain reader
can tell "never stored here" from "stored but not consumed".

The scheme objects (``base.Scheme``, found with ``get``) are the seam: no
code outside this package tests a scheme's name.
"""

from geo_recon.schemes.base import ASYNC, NAMES, STRONG, Scheme, apply, get, verify
from geo_recon.schemes.configure import (
    RETENTION, Change, Check, SchemeError, SchemeSettings, cluster_names, ensembles_from_metadata, rack_for,
    write_sets,
)

SCHEMES = NAMES

__all__ = ["ASYNC", "NAMES", "SCHEMES", "STRONG", "Scheme", "apply", "get", "verify", "RETENTION", "Change", "Check",
           "SchemeError", "SchemeSettings", "cluster_names", "ensembles_from_metadata", "rack_for", "write_sets"]
