"""avgen: joint audio-video diffusion experiments on PyTorch Lightning.

Method families, side by side on the same data and metrics (docs/methods.md): CMMD and nCMMD (one joint
v-prediction network, with and without contrastive negatives), MMDisCo (a discriminator guiding two frozen
single-modal bases), and joint flow matching on a dual-stream transformer. Importing avgen has no side
effects: commands configure what a process needs (numba's JIT cache: `avgen.utils.numba_cache.configure`)
where they start.
"""

__version__ = "0.1.0"
