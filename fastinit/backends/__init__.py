"""Backends: the only place where kernels are compiled (CPU here; CUDA in cuda.py)."""
