"""The main window's panels: each a thin widget over core functions, run through the task runner."""
