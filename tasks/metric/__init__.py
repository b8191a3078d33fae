"""Zero-shot deep metric learning (Roth et al. 2020): ranking/proxy losses, manifold mixup, rho-regularisation, rho."""
TASK = "task:MetricTask"
