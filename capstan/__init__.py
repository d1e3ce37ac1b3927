"""The ``capstan`` command, its settings and the process supervisor behind ``capstan up``."""
