"""Long runs survive: exact resume after a kill, atomic checkpoints, non-finite steps, bad outputs, wrong
checkpoints; the resumable, sharded data order."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from avgen.callbacks.reliability import AtomicCheckpointIO, NonFiniteGuard, TrainingDiverged
from avgen.cli.main import main
from avgen.data.sampler import ResumableLoader, ResumableSampler

TINY = [
    "model.base_channels=8",
    "model.head_dim=8",
    "data.batch_size=4",
    "trainer.enable_progress_bar=false",
    "trainer.val_check_interval=1000",
    "evaluate.num_samples=0",
    "threads=1",
]


# ------------------------------------------------------------------------------------------ data order


def test_sampler_order_depends_on_seed_and_epoch_only():
    a, b = ResumableSampler(10, seed=3), ResumableSampler(10, seed=3)
    assert list(a) == list(b) and sorted(a) == list(range(10))
    b.set_epoch(1)
    assert list(b) != list(a)


def test_sharded_sampler_covers_every_index_once_per_epoch():
    shards = [list(ResumableSampler(10, seed=0, num_replicas=3, rank=r)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to equal lengths, like DistributedSampler
    assert set(sum(shards, [])) == set(range(10))


def test_loader_resumes_with_the_next_unseen_batch():
    data = list(range(20))
    make = lambda: ResumableLoader(data, batch_size=4, sampler=ResumableSampler(20, seed=1))  # noqa: E731
    full = [b.tolist() for b in make()]
    first = make()
    it = iter(first)
    seen = [next(it).tolist() for _ in range(2)]
    next(it)  # prefetched by the trainer but never trained on: the state counts what was consumed
    state = {"epoch": 0, "batches": 2, "batch_size": 4}
    resumed = make()
    resumed.load_state_dict(state)
    assert seen + [b.tolist() for b in resumed] == full
    assert [b.tolist() for b in resumed] == full  # the skip applies to the resumed pass only
    with pytest.raises(ValueError, match="same batch size"):
        make().load_state_dict({**state, "batch_size": 8})


# ---------------------------------------------------------------------------------- non-finite steps


class NaNAt(L.LightningModule):
    """A linear model whose loss is NaN at the given steps."""

    def __init__(self, nan_steps: set[int]):
        super().__init__()
        torch.manual_seed(0)
        self.net, self.nan_steps, self.history = nn.Linear(3, 1), nan_steps, []

    def training_step(self, batch, batch_idx):
        loss = self.net(batch[0]).pow(2).mean()
        return loss * float("nan") if self.global_step in self.nan_steps else loss

    def on_train_batch_end(self, *args) -> None:
        self.history.append(self.net.weight.detach().clone())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 3)), batch_size=8)


def _trainer(tmp_path, steps, guard, **kw):
    return L.Trainer(
        max_steps=steps,
        callbacks=[guard, *kw.pop("callbacks", [])],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kw,
    )


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
    guard = NonFiniteGuard(max_consecutive=3)
    model = NaNAt({2, 3})
    _trainer(tmp_path, 6, guard, enable_checkpointing=False).fit(model)
    w = model.history
    assert torch.equal(w[1], w[2]) and torch.equal(w[2], w[3])  # the NaN steps left the weights alone
    assert not torch.equal(w[3], w[4]) and all(torch.isfinite(x).all() for x in w)
    assert guard.skipped == 2


def test_consecutive_nonfinite_steps_stop_keeping_the_last_good_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=1)
    with pytest.raises(TrainingDiverged, match="3 non-finite steps in a row.*last good checkpoint"):
        _trainer(tmp_path, 20, NonFiniteGuard(max_consecutive=3), callbacks=[ckpt], plugins=[AtomicCheckpointIO()]).fit(
            NaNAt(set(range(4, 20)))
        )
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_atomic_checkpoint_io_never_leaves_a_partial_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def crash(checkpoint, target):
        Path(target).write_bytes(b"partial")
        raise KeyboardInterrupt  # killed while writing

    import lightning.fabric.plugins.io.torch_io as torch_io

    monkeypatch.setattr(torch_io, "_atomic_save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


# ------------------------------------------------------------------------------- command-line faults


def test_unwritable_output_dir_fails_before_training(synthetic_store, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = main(
        ["train", "experiment=cmmd_synthetic", f"data.store={synthetic_store}", f"output_dir={blocker / 'run'}", *TINY]
    )
    assert rc == 2 and "output_dir=" in capsys.readouterr().err


@pytest.mark.slow  # whole-CLI run, subprocess or compile: the slow tier
def test_checkpoint_of_another_architecture_lists_the_mismatched_keys(synthetic_store, tmp_path, capsys):
    args = ["train", "experiment=ncmmd_synthetic", f"data.store={synthetic_store}", *TINY, "trainer.max_steps=1"]
    assert main([*args, f"output_dir={tmp_path / 'a'}"]) == 0
    rc = main(
        [
            *args,
            f"output_dir={tmp_path / 'b'}",
            "model.base_channels=16",
            f"method.init_from={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit this model" in err and "shape (checkpoint vs model)" in err


# ---------------------------------------------------------------------------------- resume after kill


def test_multi_tensor_ema_equals_lightnings_ema(tmp_path):
    """callbacks/ema.py: the same averaged weights as Lightning's per-tensor EMA, and the same checkpoint keys."""
    from lightning.pytorch.callbacks import EMAWeightAveraging
    from lightning.pytorch.demos.boring_classes import BoringModel

    from avgen.callbacks.ema import MultiTensorEMA

    weights, keys = [], []
    for ema in (EMAWeightAveraging(decay=0.9), MultiTensorEMA(decay=0.9)):
        L.seed_everything(0, verbose=False)
        model = BoringModel()
        trainer = L.Trainer(
            max_steps=6,
            callbacks=[ema],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            default_root_dir=tmp_path,
            accelerator="cpu",
        )
        trainer.fit(model)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        trainer.save_checkpoint(tmp_path / "ema.ckpt")
        keys.append(set(torch.load(tmp_path / "ema.ckpt", weights_only=False)))
    for k in weights[0]:
        torch.testing.assert_close(weights[1][k], weights[0][k], rtol=1e-6, atol=1e-7)
    assert keys[0] == keys[1]
    assert any((weights[0][k] != 0).any() for k in weights[0])


class _ScalarReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts tensor -> Python scalar reads (`.item()`, `bool(t)`, ...): on an accelerator each waits for it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


def test_the_nonfinite_guard_reads_one_scalar_per_step_whatever_the_tensor_count():
    net = nn.Sequential(*[nn.Linear(4, 4) for _ in range(25)])  # 50 gradient tensors
    net(torch.randn(2, 4)).sum().backward()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    logged = []
    module = type("M", (), {"log": lambda self, *a, **k: logged.append(a)})()
    with _ScalarReads() as reads:
        NonFiniteGuard().on_before_optimizer_step(None, module, optimizer)
    assert reads.count == 1 and all(p.grad is not None for p in net.parameters())
    next(net.parameters()).grad[0, 0] = float("nan")
    guard = NonFiniteGuard()
    guard.on_before_optimizer_step(None, module, optimizer)
    assert guard.skipped == 1 and all(p.grad is None for p in net.parameters())


def test_a_default_training_step_reads_at_most_three_scalars(synthetic_store, tmp_path):
    """Host-device syncs per step (cuda: each `_local_scalar_dense` waits for the GPU): the non-finite guard's
    one, and two inside torch's AveragedModel (EMA). Per-tensor checks once made it 150."""
    from avgen.config import load_config
    from avgen.experiment import build, make_trainer

    class Probe(L.Callback):
        def __init__(self):
            self.counts, self.mode = [], None

        def on_train_batch_start(self, *args):
            self.mode = _ScalarReads().__enter__()

        def on_train_batch_end(self, *args):
            self.mode.__exit__(None, None, None)
            self.counts.append(self.mode.count)

    cfg = load_config(
        "train",
        [
            f"output_dir={tmp_path}",
            f"data.store={synthetic_store}",
            "trainer.max_steps=4",
            "trainer.enable_progress_bar=false",
            "evaluate.num_samples=0",
            "model.base_channels=8",
            "model.head_dim=8",
            "model.channel_mult=[1]",
            "model.attention_levels=[]",
            "data.batch_size=4",
        ],
        experiment="cmmd_synthetic",
    )  # the joint-loss phase
    dm, module, callbacks = build(cfg)
    probe = Probe()
    make_trainer(cfg, [*callbacks, probe]).fit(module, datamodule=dm)
    assert len(probe.counts) == 4 and max(probe.counts) <= 3, probe.counts
