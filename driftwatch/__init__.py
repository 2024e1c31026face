"""DriftWatch: distribution-drift detection for Kubernetes services and ML models.

The package is one image with several entry points (see ``driftwatch.cli``):

* ``driftwatch.detect``   pure numpy/scipy statistics; no I/O, so it can be tested and benchmarked alone.
* ``driftwatch.sidecar``  the aiohttp detector that runs beside each selected pod.
* ``driftwatch.operator`` the kopf operator that reconciles ``DriftMonitor`` resources.
"""

__version__ = "0.1.0"
