"""Chapter 6: attribute-conditioned faces with cVAE-GAN, conditional crVAE-GAN and acVAE-GAN (attention)."""
