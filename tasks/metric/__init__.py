"""Zero-shot deep metric learning (Roth et al. 2020): PML losses, manifold mixup, rho-regularisation; Recall@k vs rho."""
TASK = "task:MetricTask"
