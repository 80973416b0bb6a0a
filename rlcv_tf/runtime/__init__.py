"""SEED-RL style runtime: actors that only step environments, behind one small boundary (`ActorPool`)."""
