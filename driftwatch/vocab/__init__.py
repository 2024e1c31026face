"""The words every part of DriftWatch shares, in one place. Standard library only, no I/O.

The operator, the sidecar, the engine and the command-line tools all speak about the same things: a
``DriftMonitor`` spec, the state of a stream, a monitor's phase and verdict, the Redis keys the sidecars
write and the operator reads, the names of labels and annotations. Each is defined once here, so a
rename is one edit and two packages can never disagree about a spelling.

* ``spec``      the ``DriftMonitor.spec`` model, validated with errors that name the field
* ``states``    stream states, monitor phases, verdicts, severities, condition types (enums) and the
  two rules that derive a phase and a verdict
* ``names``     the CRD's group/version/kind/plural, labels, annotations, container, volume and port names
* ``rediskeys`` the Redis key layout (docs/redis-keys.md is checked against it)
* ``limits``    bounds shared by validation and the engine
"""
