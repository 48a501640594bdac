"""Widgets of the workbench screens: live run table, latency chart, side-by-side outputs, progress."""
