"""The ML core, free of I/O beyond a model's own weights: models behind one factory per kind, heads,
query strategies (one ranking function), quality estimates, stopping, and the library workarounds."""
