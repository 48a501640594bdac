"""Models: the GGUF registry, GGUF header inspection (before llama.cpp sees a file), the quick
model benchmark, and probing registered endpoints (the models a server offers).

May import ``engines``, ``store`` and ``config``; never ``experiments``, ``rating`` or ``finetune``.
"""
