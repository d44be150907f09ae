"""The random numbers: Philox4x32 (philox.py), (seed, name) -> key (streams.py), element ->
counter (layout.py), words -> floats (convert.py)."""
