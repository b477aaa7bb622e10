import math

import pytest
import torch

from xcausal.nn import POSE_LATENTS, ConvDecoder, ConvEncoder, PoseDecoder, channel_plan, n_stages


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


def _pose_with_content(content: torch.Tensor) -> PoseDecoder:
    """A pose decoder on 8×8 images whose content decoder ignores its latents and draws ``content``."""
    dec = PoseDecoder(out_channels=1, image_size=8, latent_dim=4)
    dec.content.forward = lambda z: content.expand(len(z), -1, -1, -1)  # type: ignore[method-assign]
    return dec


def _pattern_decoder() -> tuple[torch.Tensor, PoseDecoder, float, float]:
    """An asymmetric 8×8 logit pattern clear of the frame's edge, a pose decoder drawing it, and
    the decoder's radians and half-widths per unit of the pose latents."""
    content = torch.full((1, 1, 8, 8), -3.0)
    content[0, 0, 2, 2:5] = 3.0
    content[0, 0, 3:5, 4] = -1.0
    content[0, 0, 5, 2] = 1.5
    dec = _pose_with_content(content)
    return content, dec, float(dec.log_rotation_scale.detach().exp()), float(dec.log_shift_scale.detach().exp())


def test_pose_decoder_shifts_then_turns_about_the_frames_centre():
    """Known answers on an asymmetric 8×8 pattern clear of the frame's edge: pose latents 0 leave
    it as drawn; a rotation latent worth a quarter (half) turn gives its 90° (180°) rotation about
    the frame's centre; a shift latent worth two pixels moves it two pixels right or down; with
    both, the shift comes first and the turn after it."""
    content, dec, rot, shift = _pattern_decoder()
    with torch.no_grad():
        same = dec(torch.zeros(1, 4))
        quarter = dec(torch.tensor([[math.pi / 2 / rot, 0.0, 0.0, 0.0]]))
        half = dec(torch.tensor([[math.pi / rot, 0.0, 0.0, 0.0]]))
        right = dec(torch.tensor([[0.0, 0.5 / shift, 0.0, 0.0]]))  # 0.5 of the half-width = 2 pixels
        down = dec(torch.tensor([[0.0, 0.0, 0.5 / shift, 0.0]]))
        down_turned = dec(torch.tensor([[math.pi / rot, 0.0, 0.5 / shift, 0.0]]))
    torch.testing.assert_close(same, content, atol=1e-5, rtol=0)
    quarter_turns = [torch.rot90(content, k, dims=(2, 3)) for k in (1, 3)]
    assert min(float((quarter - q).abs().max()) for q in quarter_turns) < 1e-4
    assert float((quarter - content).abs().max()) > 1.0
    torch.testing.assert_close(half, torch.rot90(content, 2, dims=(2, 3)), atol=1e-4, rtol=0)
    expect_right = torch.roll(content, 2, dims=3)  # the rolled-in columns are background, as the border
    torch.testing.assert_close(right, expect_right, atol=1e-5, rtol=0)
    expect_down = torch.roll(content, 2, dims=2)
    torch.testing.assert_close(down, expect_down, atol=1e-5, rtol=0)
    torch.testing.assert_close(down_turned, torch.rot90(expect_down, 2, dims=(2, 3)), atol=1e-4, rtol=0)
    assert float((down_turned - torch.roll(torch.rot90(content, 2, dims=(2, 3)), 2, dims=2)).abs().max()) > 1.0


def test_pose_decoder_reads_the_shift_in_the_image_frame_on_request():
    """With ``image_frame`` the shift latents move the image in the image's axes after the turn:
    a quarter turn and a shift latent worth two pixels down give the quarter-turned pattern two
    pixels lower (in the object's axes the same latents move it sideways). The two frames are the
    same decoder: ``to_image_frame`` and ``from_image_frame`` are inverse, and decoding z' in the
    image frame equals decoding ``from_image_frame(z')`` in the object's."""
    content, dec, rot, shift = _pattern_decoder()
    z = torch.tensor([[math.pi / 2 / rot, 0.0, 0.5 / shift, 0.0]])
    with torch.no_grad():
        object_frame = dec(z)
        dec.image_frame.fill_(True)
        image_frame = dec(z)
    turned = [torch.rot90(content, k, dims=(2, 3)) for k in (1, 3)]
    errors = [float((image_frame - torch.roll(t, 2, dims=2)).abs().max()) for t in turned]
    assert min(errors) < 1e-4
    assert float((object_frame - torch.roll(turned[errors.index(min(errors))], 2, dims=2)).abs().max()) > 1.0
    torch.manual_seed(0)
    z = torch.randn(6, 4)
    torch.testing.assert_close(dec.from_image_frame(dec.to_image_frame(z)), z, atol=1e-6, rtol=0)
    moved = dec.to_image_frame(z)
    torch.testing.assert_close(moved[:, [0, 3]], z[:, [0, 3]])  # the turn and the content stay
    torch.testing.assert_close(moved[:, 1:3].norm(dim=1), z[:, 1:3].norm(dim=1), atol=1e-6, rtol=0)
    with torch.no_grad():
        in_image = dec(moved)
        dec.image_frame.fill_(False)
        in_object = dec(z)
    torch.testing.assert_close(in_image, in_object, atol=1e-5, rtol=0)
    var = torch.rand(6, 4) + 0.1
    fixed_turn = var.clone()
    fixed_turn[:, 0] = 0.0  # a known turn: the shift variances only swap shares, their sum stays
    torch.testing.assert_close(dec.image_frame_variances(z, fixed_turn).sum(1), fixed_turn.sum(1), atol=1e-5, rtol=0)
    extra = dec.image_frame_variances(z, var).sum(1) - var.sum(1)  # the turn's variance moves both shifts
    torch.testing.assert_close(extra, rot ** 2 * var[:, 0] * moved[:, 1:3].pow(2).sum(1), atol=1e-5, rtol=0)
    # ... as the delta method says: against the spread of sampled turns pushed through to_image_frame
    zs = z[:1].repeat(200000, 1)
    zs[:, 0] += torch.randn(200000) * 0.01
    empirical = dec.to_image_frame(zs)[:, 1:3].var(0)
    predicted = dec.image_frame_variances(z[:1], torch.tensor([[1e-4, 0.0, 0.0, 0.0]]))[0, 1:3]
    torch.testing.assert_close(empirical, predicted, rtol=0.05, atol=1e-7)


def test_pose_decoder_shapes_gradients_and_latent_count():
    dec = PoseDecoder(out_channels=3, image_size=28, latent_dim=6)
    z = torch.randn(5, 6, requires_grad=True)
    out = dec(z)
    assert out.shape == (5, 3, 28, 28)
    out.square().sum().backward()
    assert z.grad is not None and (z.grad[:, :3].abs().sum(0) > 0).all()  # the pose latents act
    assert dec.log_rotation_scale.grad is not None and dec.log_shift_scale.grad is not None
    assert POSE_LATENTS == ("rotation", "shift_x", "shift_y")
    with pytest.raises(ValueError, match="latent_dim=3: the pose decoder needs more than 3 latents"):
        PoseDecoder(out_channels=1, image_size=8, latent_dim=3)


def test_pose_decoder_warps_in_float32_under_bf16_autocast():
    """Under bf16 autocast the content decoder's logits are bf16, but the grid and the resampling
    stay float32: the output equals the float32 warp of the same logits."""
    torch.manual_seed(0)
    dec = PoseDecoder(out_channels=1, image_size=28, latent_dim=5)
    z = torch.randn(3, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = dec(z)
        logits = dec.content(z[:, 3:])
    assert logits.dtype == torch.bfloat16 and out.dtype == torch.float32
    with torch.no_grad():
        dec.content.forward = lambda _z: logits  # type: ignore[method-assign]
        ref = dec(z)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
