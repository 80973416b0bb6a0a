"""The VAE-GAN model library that Chapters 5 and 6 share (thesis Sec. 5.3-5.4, 6.3-6.4; spec ch5 Part A-B).

config (the CrVAEConfig record and its layer tables), layers, blocks (channel blocks), losses (KL, likelihoods, MI,
IWAE), networks (trunks, channel-recurrent paths, priors, the discriminator), optim (grouped Adam, gradient routes,
the D gate), evaluation (IS-NLL, inception score, the in-house classifier), classifier (VGG11), latent_tools (block
edits, completion). Chapter packages import these; none of them imports a chapter package.
"""
