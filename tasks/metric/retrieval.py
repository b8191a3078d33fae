"""Retrieval metrics of embeddings of unseen classes, each query against every other embedding:
Recall@k (a same-class sample among the k nearest; Recall@1 = pytorch-metric-learning's precision_at_1),
MAP@R and NMI through pytorch-metric-learning's AccuracyCalculator, without faiss: the k-NN is its torch
`CustomKNN` (Euclidean, batched) and the k-means for NMI is scikit-learn's (random init, 20 iterations, as the
calculator's faiss default), seeded."""
from __future__ import annotations

import torch

RECALL_KS = (1, 2, 4, 8)


def _calculator(seed: int):
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    class RetrievalCalculator(AccuracyCalculator):
        """Adds Recall@k for k in RECALL_KS on the calculator's own k nearest neighbours."""

        def requires_knn(self):
            return super().requires_knn() + [f"recall_at_{k}" for k in RECALL_KS]

        def determine_k(self, bin_counts, num_reference_embeddings, ref_includes_query):
            k = super().determine_k(bin_counts, num_reference_embeddings, ref_includes_query)
            return min(max(k, max(RECALL_KS)), num_reference_embeddings - int(ref_includes_query))

    for k in RECALL_KS:
        def recall(self, knn_labels, query_labels, k=k, **kwargs):
            return (knn_labels[:, :k] == query_labels[:, None]).any(1).float().mean().item()
        setattr(RetrievalCalculator, f"calculate_recall_at_{k}", recall)

    def kmeans(x, n_clusters):
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters, init="random", n_init=1, max_iter=20, random_state=seed)
        return torch.from_numpy(km.fit_predict(x.cpu().numpy())).to(x.device)

    knn = CustomKNN(LpDistance(normalize_embeddings=False), batch_size=1024)
    return RetrievalCalculator(k="max_bin_count", device=torch.device("cpu"), knn_func=knn, kmeans_func=kmeans)


@torch.no_grad()
def retrieval_metrics(embeddings: torch.Tensor, labels: torch.Tensor, *, knn: bool = True, nmi: bool = False,
                      seed: int = 0, prefix: str = "") -> dict:
    """With knn: recall_at_{1,2,4,8} and map_at_r; with nmi: the NMI of a k-means with one cluster per class."""
    include = ([f"recall_at_{k}" for k in RECALL_KS] + ["mean_average_precision_at_r"] if knn else []) + \
        (["NMI"] if nmi else [])
    calc = _calculator(seed)
    out = calc.get_accuracy(embeddings.float().cpu(), labels.cpu(), include=tuple(include))
    names = {"mean_average_precision_at_r": "map_at_r", "NMI": "nmi"}
    return {f"{prefix}{names.get(k, k)}": float(v) for k, v in out.items()}
