"""Experiments: arm allocation, replay, automatic scoring, per-item outcomes, analysis, promotion
criteria, the verdict and the report.

May import ``engines``, ``models``, ``stats``, ``store`` and ``config``; never ``rating``,
``finetune`` or ``export`` (ratings are read from the store).
"""
