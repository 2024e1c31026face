"""``driftwatch scan``'s parts: the windows a scan compares, the samples the sidecars kept for them
(read from Redis and pooled across pods), the status it writes, and the flow that runs them."""
