import pytest
import torch

from xcausal.nn import ConvDecoder, ConvEncoder, channel_plan, n_stages


@pytest.mark.parametrize("size, stages", [(8, 1), (28, 3), (32, 3), (64, 4), (128, 5)])
@pytest.mark.parametrize("depth", [1, 2])
def test_shapes_follow_image_size(size, stages, depth):
    assert n_stages(size) == stages
    enc = ConvEncoder(in_channels=3, image_size=size, latent_dim=5, convs_per_stage=depth)
    dec = ConvDecoder(out_channels=3, image_size=size, latent_dim=5, convs_per_stage=depth)
    x = torch.rand(2, 3, size, size)
    mu, logvar = enc(x)
    assert mu.shape == logvar.shape == (2, 5)
    assert dec(mu).shape == (2, 3, size, size)


def test_channel_plans():
    assert channel_plan("synthetic", 32) == (16, 32, 64)
    assert channel_plan("xray", 128) == (32, 64, 256, 512, 512)  # repeats the last entry
    assert channel_plan((8, 16), 8) == (8,)
    with pytest.raises(ValueError, match="unknown channel plan"):
        channel_plan("nope", 32)
