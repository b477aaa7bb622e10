"""The memory estimate that bounds --image-size, --batch-size and --latent-dim before a fit starts."""

from __future__ import annotations

import pytest

from xcausal.cli import main
from xcausal.io import DataError
from xcausal.cost import check_fit_memory, estimate_fit_memory, physical_memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _est(**kw):
    base = dict(rows=1000, channels=1, image_size=64, batch_size=64, latent_dim=8)
    return estimate_fit_memory(**{**base, **kw})


def test_estimate_grows_with_each_option_and_streaming_drops_the_images():
    small = _est()
    assert _est(image_size=128).total > 3 * (small.total - small.base)
    assert _est(batch_size=256).step == pytest.approx(4 * small.step)
    assert _est(latent_dim=200).params > small.params
    assert _est(rows=100_000).data == 100 * small.data == 100 * 1000 * 64 * 64 * 4
    assert _est(in_memory=False).data == 0
    # a default-sized fit is far below a laptop's memory; 1000 RGB images at 2048 px are not
    assert _est().total < 2**30
    assert _est(channels=3, image_size=2048).total > 64 * 2**30


def test_refusal_prints_the_estimate_and_the_fix():
    est = _est(image_size=512, batch_size=512)
    with pytest.raises(DataError) as e:
        check_fit_memory(est, options="--image-size 512 --batch-size 512", limit=2**30)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("--image-size 512 --batch-size 512: a fit needs about ")
    assert "this machine has 1.0 GiB: lower --batch-size or --image-size" in msg
    check_fit_memory(_est(), options="x", limit=2**30)  # fits: no error
    assert physical_memory() is None or physical_memory() > 2**28


def test_fit_refuses_a_batch_this_machine_cannot_hold_before_any_work(tmp_path, capsys):
    data = tmp_path / "d"
    assert main(["simulate", "--graph", "first", "--n", "40", "--seed", "0", "--out", str(data)]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(out), "--image-size", "8000", "--batch-size", "40", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "40 images at --image-size 8000, --batch-size 40" in err
    assert "a fit needs about" in err and "GiB" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no run, no partial, no lock left


def test_time_estimate_counts_steps_and_the_probe_grows_with_the_image():
    import torch

    from xcausal.cost import clock_text, estimate_fit_seconds, probe_pass_seconds

    state = torch.random.get_rng_state()
    small = probe_pass_seconds(channels=1, image_size=16, batch_size=8)
    big = probe_pass_seconds(channels=1, image_size=64, batch_size=32)
    assert torch.equal(state, torch.random.get_rng_state())  # no random numbers drawn
    assert 0 < small < big
    one = estimate_fit_seconds(rows=1000, epochs=10, batch_size=64, pass_seconds=0.1)
    two = estimate_fit_seconds(rows=1000, epochs=20, batch_size=64, pass_seconds=0.1)
    fixed = estimate_fit_seconds(rows=1000, epochs=0, batch_size=64, pass_seconds=0.1)
    assert fixed > 0 and two - fixed == pytest.approx(2 * (one - fixed))  # steps scale, the fixed part does not
    assert estimate_fit_seconds(rows=1025, epochs=10, batch_size=64, pass_seconds=0.1) > one  # 17 steps, not 16
    assert [clock_text(s) for s in (3, 42, 420, 7200)] == ["about 3 s", "about 40 s", "about 7 min", "about 2.0 h"]


def _big_images(tmp_path, side: int):
    import numpy as np
    import pandas as pd
    from PIL import Image

    root = tmp_path / "big"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (side, side), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        rows.append({"image": f"images/{i}.png", "dose": float(i)})
    pd.DataFrame(rows).to_csv(root / "table.csv", index=False)
    return root


def test_info_and_fit_say_when_images_are_downscaled_and_fit_records_its_time(tmp_path, capsys):
    import json

    data = _big_images(tmp_path, 80)
    assert main(["info", str(data)]) == 0
    out = capsys.readouterr().out
    assert "images 1×64×64" in out and "stored up to 80 px, downscaled to 64 (--image-size 80 keeps them)" in out
    assert "default cmcl fit: 300 epochs of 1 steps, estimated time about" in out
    run = tmp_path / "run"
    assert main(["fit", str(data), "--out", str(run), "--epochs", "2", "--batch-size", "8", "--latent-dim", "2"]) == 0
    err = capsys.readouterr().err
    assert ("fit: 12 images at 64 px (stored up to 80 px, downscaled; --image-size 80 keeps them), 2 epochs of 2 "
            "steps; estimated time about") in err
    times = json.loads((run / "config.json").read_text())["fit_seconds"]
    assert times["estimated"] > 0 and times["measured"] > 0
    assert main(["info", str(data), "--image-size", "80"]) == 0
    assert "downscaled" not in capsys.readouterr().out


def test_orientation_work_follows_the_schedule():
    from xcausal.cost import cmcl_orientation_work, estimate_fit_seconds

    # 188 epochs: warm-up 38, passes every 5 epochs until epoch 141 -> 21 passes (as measured)
    assert cmcl_orientation_work(epochs=188, continuous_variables=2, latents=6) == (21, 12)
    assert cmcl_orientation_work(epochs=188, continuous_variables=2, latents=6, params={"orient": "dag"}) == (0, 0)
    assert cmcl_orientation_work(epochs=188, continuous_variables=0, latents=6)[1] == 0
    base = estimate_fit_seconds(rows=1000, epochs=10, batch_size=64, pass_seconds=0.1)
    more = estimate_fit_seconds(rows=1000, epochs=10, batch_size=64, pass_seconds=0.1, orientation_passes=21,
                                orientation_pairs=12)
    assert more - base == pytest.approx(21 * 12 * 0.2 * 0.73)

    def orient_part(rows):
        kw = dict(rows=rows, epochs=10, batch_size=64, pass_seconds=0.1)
        return estimate_fit_seconds(**kw, orientation_passes=21, orientation_pairs=12) - estimate_fit_seconds(**kw)

    assert orient_part(4000) == pytest.approx(2 * orient_part(1000))  # at most 2,000 rows are scored
