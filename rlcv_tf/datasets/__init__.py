"""Shared image data sets: CelebA / CUB / LSUN / MNIST readers, procedural stand-ins, tf.data pipelines."""
