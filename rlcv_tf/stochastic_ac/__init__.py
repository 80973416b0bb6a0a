"""Chapter 2: stochastic-activation actor-critic (A3C-LSTM, SA3C/FSA3C/HPA3C, NoisyNet, dropout units, ACER/SACER,
DDPG/SDDPG/PN-DDPG). Imports `rlcv_tf.core` and `rlcv_tf.envs`, never another chapter package."""
