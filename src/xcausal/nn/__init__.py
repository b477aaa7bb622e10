"""Neural building blocks shared by the models."""

from xcausal.nn.blocks import CHANNEL_PLANS, MLP, ConvDecoder, ConvEncoder, channel_plan, n_stages

__all__ = ["MLP", "ConvEncoder", "ConvDecoder", "CHANNEL_PLANS", "channel_plan", "n_stages"]
