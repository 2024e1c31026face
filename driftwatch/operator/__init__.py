"""The DriftWatch operator: reconciles ``DriftMonitor`` resources with kopf.

``handlers`` registers every kopf handler and nothing else; the work of each event lives in plain
modules that can be tested without a cluster (``render`` and ``inject`` are pure functions):

* ``render``    the children of a monitor (ConfigMap, metrics Service, ServiceMonitor, PrometheusRule)
* ``reconcile`` server-side apply of those children with owner references
* ``inject``    the JSONPatch that adds the detector sidecar to a pod
* ``webhook``   the mutating admission server and its MutatingWebhookConfiguration (``certs`` for TLS)
* ``aggregate`` / ``status``  per-pod summaries from Redis merged into ``status``, plus Events
* ``cleanup``   Redis keys of a deleted monitor
* ``gate``      the rollout verdict endpoint for Argo Rollouts / Flagger
* ``settings``  kopf's settings; ``main`` the ``driftwatch operator`` entry point
"""
