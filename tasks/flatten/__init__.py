"""Manifold Mixup's own flattening experiment (Verma et al. 2019, section 3.2 and appendix G): a LeakyReLU MLP on MNIST with a 12-unit bottleneck, the bottleneck's per-class singular values."""
TASK = "task:FlattenTask"
