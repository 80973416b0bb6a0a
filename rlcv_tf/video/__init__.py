"""Chapter 7: decomposing video representations into statics S and dynamics P (BlockSTN, Res3D-18, CPC)."""
