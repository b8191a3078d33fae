"""Generic image datasets held in memory as uint8 tensors with class labels, split by class (the setting of
few-shot and zero-shot tasks): Omniglot, and any folder of <class>/<image> files. No task knowledge."""
from .classes import ClassSplit, resize_uint8
from .image_folder import load_class_folder
from .omniglot import load_omniglot

__all__ = ["ClassSplit", "resize_uint8", "load_class_folder", "load_omniglot"]
