"""GraphMix (Verma et al.): a GCN trained jointly with a parameter-shared FCN under manifold mixup, on Planetoid."""
TASK = "task:GraphMixTask"
