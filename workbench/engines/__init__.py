"""Engines: the Backend protocol (``base``) and everything that turns a request into a generation.

Today the llama.cpp engine and the model worker process that hosts it. May import ``config``,
``formatting`` and ``store``; never ``experiments``, ``rating``, ``finetune`` or ``export``.
"""
