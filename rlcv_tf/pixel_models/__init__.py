"""Seed 004 autoregressive image models: masked convolutions, PixelCNN, gated PixelCNN, PixelRNN (Row LSTM,
Diagonal BiLSTM), their likelihood, samplers, training and export (issue 15 section 3; spec seeds003_004 section 3)."""
