"""Chapter 4: agent-centric representations for multi-agent RL (CNN / ACNN, V-trace, SEED-style training)."""
