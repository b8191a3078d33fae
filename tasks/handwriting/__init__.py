"""Handwritten line recognition with CTC and mixed-loss manifold mixup (Moysset & Messina, ICDAR 2019)."""
TASK = "task:HandwritingTask"
