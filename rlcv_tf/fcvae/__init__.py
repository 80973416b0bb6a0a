"""Seed 002: fully-convolutional beta-VAEs with spatial latents, their KL variants, the MNIST autoencoders of Tables
3.1 / 3.2, a dense beta-VAE, and the tools of the draft's results chapter (MCMC sampling, latent maps, traversals,
MIG, DSRL symbol accuracy)."""
