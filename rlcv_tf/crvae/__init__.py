"""Chapter 5: channel-recurrent autoencoding (crVAE, crVAE-GAN), Stage-2 refinement, latent tools, evaluation."""
