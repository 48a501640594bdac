"""Models: the GGUF registry, GGUF header inspection (before llama.cpp sees a file) and the quick
model benchmark.

May import ``engines``, ``store`` and ``config``; never ``experiments``, ``rating`` or ``finetune``.
"""
