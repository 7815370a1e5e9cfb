"""The PySide6 desktop app: thin panels over the headless core (semid_studio.core)."""
