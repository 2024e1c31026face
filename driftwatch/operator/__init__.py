"""The DriftWatch operator: reconciles ``DriftMonitor`` resources with kopf.

``handlers`` registers every kopf handler (``register(registry, ctx)``) and holds only glue; the work
of each event lives in a plain module that runs without kopf:

* entry and wiring: ``command`` (``driftwatch operator``: flags -> ``options`` -> ``kopf.run``),
  ``kopf_settings`` (kopf's settings, with the reason for each), ``context`` (the per-process objects)
* flows, one per kind of event: ``lifecycle`` (start, stop), ``reconcile`` (children + Ready),
  ``status_round`` (timer and notification rounds), ``cleanup`` (Redis keys of a deleted monitor),
  ``notify`` (the one Redis Pub/Sub listener)
* pure rules: ``driftmonitor`` (a DriftMonitor as the operator sees it), ``render`` (its children),
  ``inject`` (the sidecar JSONPatch), ``status_rules`` (phase, verdict, conditions, Events)
* state and I/O: ``cache`` (DriftMonitors from the watch), ``pod_reports`` (per-pod summaries from Redis,
  merged by the engine), ``prometheus`` (are the Prometheus Operator's CRDs there?)
* servers: ``webhook`` (admission, its TLS via ``certs``), ``endpoints`` (gate, health, ``telemetry``)
"""
