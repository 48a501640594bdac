"""Rating: blind expert rating sessions (``sessions``) and the CSV evaluation sheets (``sheets``).

May import ``store`` and ``stats``; never ``engines``, ``experiments``, ``finetune`` or ``export``.
"""
