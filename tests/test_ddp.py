"""Two CPU processes with the gloo backend train exactly what one process trains: every rank
draws the same global batch, takes its half, and DDP averages the gradients."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from bodyscene.benchmark.harness.train import TrainConfig, train
from conftest import write_toy_manifest


def _cfg(trials: Path, out: Path) -> TrainConfig:
    # The tiny backbone has no BatchNorm, so statistics are not per-process either.
    return TrainConfig(trials=str(trials), model="domainnet", backbone="tiny", out=str(out),
                       epochs=2, lr=0.05, batch_size=4, image_size=32, seed=1,
                       view_dropout=0.3, progress=False, device="cpu")


def _worker(rank: int, world: int, port: int, trials: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        train(_cfg(Path(trials), Path(out)))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    trials = write_toy_manifest(tmp_path / "toy", size=32)
    single = train(_cfg(trials, tmp_path / "single"))
    mp.start_processes(_worker, args=(2, _free_port(), str(trials), str(tmp_path / "ddp")),
                       nprocs=2, join=True, start_method="spawn")
    a = torch.load(single / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][key], atol=1e-5), key
    from bodyscene.models.registry import create_model

    torch.manual_seed(1)
    initial = create_model("domainnet", 3, backbone="tiny").state_dict()
    assert not torch.allclose(initial["body.head.weight"], b["state_dict"]["body.head.weight"])
