"""pytest settings shared by tests/ and the doctests in fastinit/ (both are collected).

Keras picks its backend at first import and defaults to tensorflow, which no extra of ours
installs: the Keras tests and fastinit.keras's doctests run on JAX unless KERAS_BACKEND says
otherwise.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
