"""Hyperparameter search over the shared trainer: Ray Tune + Optuna (``jobs/tune.py``).

``space`` (search spaces from the config), ``search`` (the Tuner, its trials and resume), ``pareto``
(the E1/E2 trade-off front), ``report`` (trial tables, best config, plots).
"""
