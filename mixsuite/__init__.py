"""mixsuite: Manifold Mixup and its descendants on any model."""
__version__ = "0.1.0"
