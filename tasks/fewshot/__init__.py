"""S2M2 few-shot learning: rotation self-supervision + manifold mixup, batched N-way K-shot episodic evaluation."""
TASK = "task:FewShotTask"
