"""GraphMix (Verma et al.): a GCN or GAT trained jointly with a parameter-shared FCN under manifold mixup, on Planetoid."""
TASK = "task:GraphMixTask"
