"""Chapter 3: world graphs for hierarchical reinforcement learning (thesis Ch. 3; spec ch3_world_graphs.md).

Phase 1 learns a goal-conditioned policy pi_g and a sequential VAE whose HardKuma gates pick out waypoints V_p
(vae.py, exploration.py, waypoints.py); random walks and pi_g paths then connect the waypoints into a directed,
weighted world graph with a shortest-path planner (graph.py). Phase 2 trains a Feudal Manager/Worker with
Wide-then-Narrow goals and graph traversal on the maze tasks (networks.py, feudal.py, traversal.py), evaluated and
exported by evaluation.py and export.py. Shared maths lives in rlcv_tf/core.
"""
