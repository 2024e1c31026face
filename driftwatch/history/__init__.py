"""A monitor's history: every transition, scan, alert and acknowledgement, monitor-wide, bounded in
Redis (``P:history``), served by the operator (``GET /v1/history/{namespace}/{name}``) and shown by
``driftwatch history``."""
