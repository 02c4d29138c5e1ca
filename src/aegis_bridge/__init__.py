"""Aegis ML bridge: scores transactions the C++ core offloads over ZeroMQ.

Modules: `protocol` (wire format, pure functions), `model` (features and the
logistic model), `synthetic` (seeded payments for training and tests),
`bridge` (the loop), `metrics` (Prometheus), `__main__` (the CLI).
"""

__version__ = "0.1.0"
