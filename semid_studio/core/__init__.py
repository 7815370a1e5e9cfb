"""The headless core: everything below the GUI. Never imports Qt (a test keeps it so)."""
