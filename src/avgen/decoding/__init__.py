"""Stored representations back to media: VAE latents to frames, mels to waveforms (Griffin-Lim, band
synthesis, a trained MelGAN), and mp4 export."""
