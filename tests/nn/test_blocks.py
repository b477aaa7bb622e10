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


@pytest.mark.parametrize("depth", [1, 2])
def test_init_output_bias_starts_at_the_channel_mean(depth):
    dec = ConvDecoder(out_channels=3, image_size=28, latent_dim=4, convs_per_stage=depth)
    mean = torch.tensor([0.13, 0.5, 0.9])
    dec.init_output_bias(mean)
    with torch.no_grad():  # silence everything before the output bias: the output is sigmoid(bias)
        for p in dec.parameters():
            p.zero_()
        dec.init_output_bias(mean)
        out = torch.sigmoid(dec(torch.randn(2, 4)))
    assert torch.allclose(out.mean(dim=(0, 2, 3)), mean, atol=1e-6)
    assert torch.allclose(out.std(dim=(0, 2, 3)), torch.zeros(3), atol=1e-6)


def test_init_output_bias_clips_and_checks_channels():
    dec = ConvDecoder(out_channels=1, image_size=8, latent_dim=2)
    dec.init_output_bias([0.0])  # an all-black data set: a finite logit, not -inf
    bias = [m for m in dec.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1].bias.detach()
    assert torch.isfinite(bias).all() and float(bias) == pytest.approx(float(torch.logit(torch.tensor(1e-3))))
    with pytest.raises(ValueError, match="2 values; the decoder has 1 channels"):
        dec.init_output_bias([0.1, 0.2])
