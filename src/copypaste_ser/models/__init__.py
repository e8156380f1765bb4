"""Thin ResNet-34 + multi-head attention pooling (paper section 3.1)."""

from copypaste_ser.models.classifier import PRESETS, EmotionResNet, ModelConfig, build_model
from copypaste_ser.models.pooling import MultiHeadAttentionPooling, lengths_to_mask
from copypaste_ser.models.resnet import BasicBlock, ThinResNet34

__all__ = [
    "PRESETS",
    "BasicBlock",
    "EmotionResNet",
    "ModelConfig",
    "MultiHeadAttentionPooling",
    "ThinResNet34",
    "build_model",
    "lengths_to_mask",
]
