"""avgen: joint audio-video diffusion experiments (CMMD, MMDisCo) on PyTorch Lightning."""

__version__ = "0.1.0"
