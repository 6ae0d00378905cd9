"""omnivad: multi-domain video anomaly detection on Ray."""

__version__ = "0.1.0"
