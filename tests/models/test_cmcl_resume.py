"""CMCL training checkpoints: contents, resume bit-identical to an uninterrupted fit, NaN stops."""

from __future__ import annotations

import contextlib
import json
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from xcausal.data import dataset_from_arrays
from xcausal.io import DataError
from xcausal.models.cmcl import CMCL, TRAINING_CHECKPOINT_META, FitInterrupted, losses, read_training_checkpoint_meta, trainer


def tiny(n: int, seed: int = 0):
    """n rows: a Gaussian blob whose position follows a latent z, and a continuous, a binary and a
    categorical variable (as tests/models/test_cmcl.py)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    xs = np.arange(8)
    row = np.exp(-0.5 * ((xs[None, :] - 3.5 - np.tanh(z / 2.0)[:, None]) / 1.5) ** 2)
    col = np.exp(-0.5 * ((xs - 3.5) / 3.0) ** 2)
    images = (row[:, None, :] * col[None, :, None])[:, None].astype(np.float32)
    table = pd.DataFrame({"a": np.tanh(z) + 0.3 * rng.normal(size=n), "b": rng.integers(0, 2, n),
                          "c": rng.choice(["x", "y", "q"], n)})
    return dataset_from_arrays(images, table)


# 60 rows at batch 16: 4 steps per epoch; warm-up 1 epoch, so ANM orientation, CR and dual updates all run
PARAMS = dict(latent_dim=2, epochs=5, batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def ds():
    return tiny(60)


@pytest.fixture(scope="module")
def reference(ds):
    return CMCL(**PARAMS).fit(ds)


def assert_same_fit(a: CMCL, b: CMCL, ds) -> None:
    assert np.array_equal(a.w_raw_, b.w_raw_)
    assert np.array_equal(a.transform(ds), b.transform(ds))
    pd.testing.assert_frame_equal(a.history_, b.history_, check_exact=True)
    sa, sb = a.net_.state_dict(), b.net_.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.graph_obj_.to_dict() == b.graph_obj_.to_dict()


@contextlib.contextmanager
def stop_after_steps(stop: threading.Event, n: int):
    """Within the block, set ``stop`` during the n-th gradient step (training polls it after the step)."""
    orig = trainer.step_losses
    calls = [0]

    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n:
            stop.set()
        return orig(*args, **kwargs)

    trainer.step_losses = step
    try:
        yield
    finally:
        trainer.step_losses = orig


def test_checkpointing_does_not_change_the_fit(ds, reference, tmp_path):
    m = CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path / "ck", checkpoint_every=2)
    assert_same_fit(reference, m, ds)
    meta = read_training_checkpoint_meta(tmp_path / "ck")
    assert meta["finished"] and meta["epoch"] == 5 and meta["step"] == 0 and meta["reason"] == "final"
    assert len(meta["history"]) == 5
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["checkpoint-000003.pt", "checkpoint.json"]


# step 6 = epoch 2, step 2 of 4 (mid-epoch); step 4 = the last step of epoch 1 (its end-of-epoch work,
# the first ANM orientation, is still to do); step 13 = epoch 4, step 1
@pytest.mark.parametrize("n_steps", [6, 4, 13])
def test_interrupted_then_resumed_equals_uninterrupted(ds, reference, tmp_path, n_steps):
    stop = threading.Event()
    m = CMCL(**PARAMS)
    with stop_after_steps(stop, n_steps), pytest.raises(FitInterrupted, match="checkpoint written") as info:
        m.fit(ds, checkpoint_dir=tmp_path, checkpoint_every=2, stop=stop)
    where = ((n_steps - 1) // 4, (n_steps - 1) % 4 + 1)  # (epochs done, steps of the next): a stop at a step
    assert (info.value.epoch, info.value.step) == where
    meta = read_training_checkpoint_meta(tmp_path)
    assert (meta["epoch"], meta["step"], meta["reason"]) == (*where, "stop")
    resumed = CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path, resume=True)
    assert_same_fit(reference, resumed, ds)


def test_stop_at_an_epoch_end_and_after_training(ds, reference, tmp_path, monkeypatch):
    from xcausal.models.cmcl import refit as refit_mod

    # set during the end-of-epoch ANM orientation of epoch 2: the checkpoint is at (2, 0)
    stop = threading.Event()
    m = CMCL(**PARAMS)
    orig = trainer.orient_during_training

    def orient(*args, **kwargs):
        stop.set()
        return orig(*args, **kwargs)

    monkeypatch.setattr(trainer, "orient_during_training", orient)
    with pytest.raises(FitInterrupted):
        m.fit(ds, checkpoint_dir=tmp_path / "a", stop=stop)
    monkeypatch.undo()
    meta = read_training_checkpoint_meta(tmp_path / "a")
    assert (meta["epoch"], meta["step"]) == (2, 0)
    assert_same_fit(reference, CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path / "a", resume=True), ds)
    # set during the DAG refit: training is checkpointed as finished, a resume only refits
    stop = threading.Event()
    m = CMCL(**PARAMS)
    orig_refit = refit_mod.refit_dag

    def refit(*args):
        stop.set()
        return orig_refit(*args)

    monkeypatch.setattr(refit_mod, "refit_dag", refit)
    with pytest.raises(FitInterrupted, match="after the DAG refit"):
        m.fit(ds, checkpoint_dir=tmp_path / "b", stop=stop)
    assert read_training_checkpoint_meta(tmp_path / "b")["finished"]
    assert_same_fit(reference, CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path / "b", resume=True), ds)


def test_checkpoint_files_are_tensors_and_strict_json(ds, tmp_path):
    stop = threading.Event()
    m = CMCL(**PARAMS)
    with stop_after_steps(stop, 6), pytest.raises(FitInterrupted):
        m.fit(ds, checkpoint_dir=tmp_path, stop=stop)

    def no_constants(c):
        raise AssertionError(f"non-standard JSON constant {c}")

    meta = json.loads((tmp_path / "checkpoint.json").read_text(), parse_constant=no_constants)
    tensors = torch.load(tmp_path / meta["tensors"], weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    assert {"rng.shuffle", "rng.noise", "rng.cr", "epoch.perm", "net.dag._in_mask", "anchor.mean",
            "anchor.unmix"} <= set(tensors)
    assert any(k.startswith("opt.") and k.endswith(".exp_avg") for k in tensors)
    assert any(k.startswith("net.dag.") for k in tensors)
    for key in ("epoch", "step", "epochs", "params", "resolved", "data", "history", "epoch_sums", "alm",
                "anm_pairs", "sha256", "format", "method"):
        assert key in meta
    assert meta["alm"]["h_prev"] == "inf"  # no dual update yet: JSON has no inf
    assert meta["params"] == CMCL(**PARAMS).get_params()


def test_resume_refuses_other_parameters_data_or_no_checkpoint(ds, tmp_path):
    with pytest.raises(ValueError, match="no training checkpoint"):
        CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path / "none", resume=True)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        CMCL(**PARAMS).fit(ds, resume=True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path, checkpoint_every=0)
    stop = threading.Event()
    m = CMCL(**PARAMS)
    with stop_after_steps(stop, 5), pytest.raises(FitInterrupted):
        m.fit(ds, checkpoint_dir=tmp_path, stop=stop)
    with pytest.raises(DataError, match=r"epochs=6 \(checkpoint: 5\)"):
        CMCL(**{**PARAMS, "epochs": 6}).fit(ds, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(DataError, match="not the one the checkpoint was trained on"):
        CMCL(**PARAMS).fit(tiny(60, seed=1), checkpoint_dir=tmp_path, resume=True)
    # a smaller learning rate is allowed (the way out of a NaN)
    CMCL(**{**PARAMS, "lr": 5e-4}).fit(ds, checkpoint_dir=tmp_path, resume=True)


def test_tampered_tensor_file_is_refused(ds, tmp_path):
    CMCL(**{**PARAMS, "epochs": 2}).fit(ds, checkpoint_dir=tmp_path)
    meta = read_training_checkpoint_meta(tmp_path)
    with open(tmp_path / meta["tensors"], "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="sha256"):
        CMCL(**{**PARAMS, "epochs": 2}).fit(ds, checkpoint_dir=tmp_path, resume=True)


def test_nan_names_term_epoch_and_step_and_keeps_last_good_checkpoint(ds, tmp_path, monkeypatch):
    calls = [0]
    orig = losses.kl_std

    def kl_std(mu, lv):  # NaN from the 11th step on: epoch 3, step 3
        calls[0] += 1
        out = orig(mu, lv)
        return out * float("nan") if calls[0] >= 11 else out

    monkeypatch.setattr(losses, "kl_std", kl_std)
    with pytest.raises(FloatingPointError, match=r"loss term kl0=nan became NaN/inf at epoch 3, step 3 of 4") as info:
        CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path, checkpoint_every=1)
    assert "last good checkpoint (epoch 2)" in str(info.value) and "\n" not in str(info.value)
    meta = read_training_checkpoint_meta(tmp_path)
    assert (meta["epoch"], meta["step"], meta["reason"]) == (2, 0, "periodic")
    monkeypatch.setattr(losses, "kl_std", orig)
    m = CMCL(**{**PARAMS, "lr": 5e-4}).fit(ds, checkpoint_dir=tmp_path, resume=True)
    assert len(m.history_) == 5 and np.isfinite(m.history_[["rec0", "kl0", "rec", "h"]].to_numpy(float)).all()


def test_nan_without_checkpoints_still_named(ds, monkeypatch):
    monkeypatch.setattr(losses, "gauss", lambda logits, x, sigma: (logits.sum() * float("inf")))
    with pytest.raises(FloatingPointError, match=r"loss term rec0=.* at epoch 1, step 1 of 4; try a smaller"):
        CMCL(**PARAMS).fit(ds)


def test_resume_names_every_changed_option_and_refuses_an_older_format(ds, tmp_path):
    """Resuming with other training options names each of them (``min_effect`` acts only after
    training and may change); a checkpoint in an older format is refused in one line saying so."""
    other = dict(cr_vars="all", anm_decontaminate=False, anm_latent_scale="raw", anm_entropy="vasicek")
    stop = threading.Event()
    m = CMCL(**PARAMS, **other, min_effect=0.0)
    with stop_after_steps(stop, 5), pytest.raises(FitInterrupted):
        m.fit(ds, checkpoint_dir=tmp_path, stop=stop)
    with pytest.raises(DataError, match=r"anm_decontaminate=True \(checkpoint: False\), anm_entropy='auto' "
                                        r"\(checkpoint: 'vasicek'\), anm_latent_scale='auto' "
                                        r"\(checkpoint: 'raw'\), cr_vars=4 \(checkpoint: 'all'\)") as err:
        CMCL(**PARAMS).fit(ds, checkpoint_dir=tmp_path, resume=True)
    assert "min_effect" not in str(err.value)  # acts after training: a resume may change it
    meta_path = tmp_path / TRAINING_CHECKPOINT_META
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 2}))
    with pytest.raises(ValueError, match=r"training checkpoint in format 2 \(xcausal .*\); this version reads "
                                         r"format 3 only: start the fit again without --resume") as err:
        CMCL(**PARAMS, **other).fit(ds, checkpoint_dir=tmp_path, resume=True)
    assert "\n" not in str(err.value)
    meta_path.write_text(json.dumps(meta))
    resumed = CMCL(**PARAMS, **other).fit(ds, checkpoint_dir=tmp_path, resume=True)
    assert_same_fit(resumed, CMCL(**PARAMS, **other).fit(ds), ds)


@pytest.mark.parametrize("how", ["path", "symlink"])
def test_a_checkpoint_naming_a_file_elsewhere_is_refused(ds, tmp_path, how):
    """checkpoint.json is data: its tensor file must be a checkpoint-NNNNNN.pt in its own directory."""
    import shutil

    work = tmp_path / "work"
    CMCL(**{**PARAMS, "epochs": 2}).fit(ds, checkpoint_dir=work)
    meta_path = work / TRAINING_CHECKPOINT_META
    meta = json.loads(meta_path.read_text())
    outside = tmp_path / "outside.pt"
    shutil.copy(work / meta["tensors"], outside)  # a valid tensor file, with the right sha256
    if how == "path":
        meta_path.write_text(json.dumps({**meta, "tensors": "../outside.pt"}))
    else:
        (work / meta["tensors"]).unlink()
        (work / meta["tensors"]).symlink_to(outside)
    with pytest.raises(ValueError, match=r"names the tensor file .*not a checkpoint-NNNNNN\.pt file in its own"):
        CMCL(**{**PARAMS, "epochs": 2}).fit(ds, checkpoint_dir=work, resume=True)
