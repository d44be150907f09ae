"""Backends: the only place where kernels are compiled (CPU in cpu.py; CUDA in cuda/), over one
shared contract: the FillPlan (plan.py) and the per-value helpers both compile (values.py)."""
