"""torch_geometric, imported once with its import-time FutureWarning ("`torch.jit.script` is deprecated", from the
library's own code) silenced: it says nothing a user of this task can act on. Import this before torch_geometric."""
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    import torch_geometric  # noqa: F401
