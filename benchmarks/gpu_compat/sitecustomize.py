"""Loaded at start-up by benchmarks/gpu_session.sh (on PYTHONPATH), for the GPU machine's image.

numba-cuda 0.30.4 registers an overload of ``np.row_stack`` when it compiles its first kernel,
and NumPy 2.5 removed that alias of ``np.vstack``, so that combination (the image's) fails with
AttributeError before any kernel runs. Restore the alias; nothing else is changed.
"""

import numpy

if not hasattr(numpy, "row_stack"):
    numpy.row_stack = numpy.vstack
