"""Local LLM evaluation workbench: core library and headless CLI (never imports the UI)."""

__version__ = "0.1.0"
