"""Commands of the ``capstan`` CLI, one module each, registered by :mod:`capstan.cli`."""
