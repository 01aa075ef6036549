"""The command groups of ``ec``, one module per resource."""
