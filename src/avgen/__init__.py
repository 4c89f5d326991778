"""avgen: joint audio-video diffusion experiments (CMMD, MMDisCo) on PyTorch Lightning."""

__version__ = "0.1.0"

from avgen.utils.numba_cache import configure as _configure_numba_cache

# Before anything imports librosa: processes started together must not race on numba's cache.
_configure_numba_cache()
