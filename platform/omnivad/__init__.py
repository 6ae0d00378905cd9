"""omnivad: multi-domain video anomaly detection on Ray."""

__version__ = "0.1.0"

#: The notebook API (:mod:`omnivad.api`), imported on first use so ``import omnivad`` loads neither torch nor Ray.
_API = ("train", "evaluate", "predict", "load_model")


def __getattr__(name: str) -> object:
    if name in _API:
        import importlib

        # imported by name at first use: a lazy attribute, not an import-time edge omnivad -> omnivad.api
        return getattr(importlib.import_module("omnivad.api"), name)
    raise AttributeError(f"module 'omnivad' has no attribute {name!r}")
