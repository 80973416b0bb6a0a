"""Environments behind one interface (see `base.MultiAgentEnv`) and the registry `make_env`."""
