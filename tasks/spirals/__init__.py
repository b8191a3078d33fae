"""The blog's Figure 1: two interlocked spirals, an MLP with a 2-unit bottleneck, decision maps in input and hidden space."""
TASK = "task:SpiralsTask"
