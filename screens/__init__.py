"""Textual UI of the workbench: thin screens over the ``workbench`` library.

Screens never run SQL or statistics and never load a model in the UI process: they call
``workbench`` functions in thread workers and render what comes back. Start with
``screens.app.create_app`` (tests) or ``screens.app.run_app`` (through ``screens.launcher``, the
``workbench`` command).
"""
