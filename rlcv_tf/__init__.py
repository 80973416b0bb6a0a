"""rlcv_tf: TensorFlow 2 / Keras 3 / TFP implementation of the thesis "Crafting Deep Learning Models for
Reinforcement Learning and Computer Vision Applications" and its companion documents.

Packages: `core` (shared maths: V-trace, checkpoint/summary/export helpers), `envs` (one environment interface
and its adapters), `runtime` (SEED-style actors and learner plumbing), and one package per thesis chapter
(`marl` = Chapter 4).
"""
