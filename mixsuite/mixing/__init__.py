"""The shared mixing core: torch only, no task knowledge."""
from .backends import MIXERS, CutMix, ERM, InputMixup, ManifoldMixup, Mixer, build_mixer
from .config import Method, MixingConfig, mixer_from_config, mixing_used
from .gate import GatedMixer
from .hooks import INPUT, apply_plan, release, resolve_layers
from .losses import bce_on_softmax, mixed_ctc_loss, mixed_loss, multilabel_bce, one_hot, soft_cross_entropy
from .pairing import KernelPairing, PermutationPairing, kernel_partners, kernel_weights
from .plan import MixPlan, identity_plan
from .sampling import pair_within, sample_beta, sample_lambda, sample_permutation
from .timm_mixup import Mixup
from .shaped import MixingShapeError, ShapedPlan
from .patchup import PatchUp                       # the descendants register themselves on import
from .noisy import NoisyFeatureMixup
from .alignmix import AlignMixup, sinkhorn
from .fmix import FMix
from .resizemix import ResizeMix

__all__ = [
    "MIXERS", "CutMix", "ERM", "InputMixup", "ManifoldMixup", "Mixer", "build_mixer", "Method", "MixingConfig",
    "mixer_from_config", "mixing_used", "GatedMixer", "INPUT", "apply_plan",
    "resolve_layers", "bce_on_softmax", "mixed_ctc_loss", "mixed_loss", "one_hot", "soft_cross_entropy", "MixPlan",
    "identity_plan", "pair_within", "sample_beta", "sample_lambda", "sample_permutation", "Mixup", "release",
    "MixingShapeError", "ShapedPlan", "PatchUp", "NoisyFeatureMixup", "AlignMixup", "sinkhorn", "FMix", "ResizeMix",
    "KernelPairing", "PermutationPairing", "kernel_partners", "kernel_weights", "multilabel_bce",
]
