"""The detector sidecar: an aiohttp server beside the app that validates samples, feeds the engine in
batches, exports Prometheus metrics and keeps its state in Redis. ``driftwatch sidecar --config FILE``."""
