"""C-Mixup's regression benchmarks (Airfoil, NO2, Exchange-Rate): erm, input, manifold and C-Mixup's label-kernel pairs; RMSE, MAPE."""
TASK = "task:RegressionTask"
