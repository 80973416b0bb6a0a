"""Seed 003's GAN family (issue 15 §2): GAN (minimax / non-saturating), DCGAN-style nets, cGAN, WGAN / WGAN-GP,
StackGAN (Conditioning Augmentation, Stage-I, the Stage-II refiner); training, evaluation, export. The losses live
in rlcv_tf.core.gan (shared with Chapters 5 and 6)."""
