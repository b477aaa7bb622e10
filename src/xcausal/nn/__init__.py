"""Neural building blocks shared by the models."""

from xcausal.nn.blocks import CHANNEL_PLANS, MLP, POSE_LATENTS, ConvDecoder, ConvEncoder, PoseDecoder, channel_plan, n_stages

__all__ = ["MLP", "ConvEncoder", "ConvDecoder", "PoseDecoder", "POSE_LATENTS", "CHANNEL_PLANS", "channel_plan", "n_stages"]
