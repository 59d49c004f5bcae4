"""Where a run executes: the torchrun process group and the device. Written once, for train and
evaluate alike."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bodyscene.errors import BadInput


@dataclass
class Dist:
    """This process's place in a torchrun job (world 1, rank 0 when run alone)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(world, int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")))


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(name: str, dist: Dist | None = None):
    """`auto` picks CUDA (this process's local GPU under torchrun), then Apple's MPS, then the
    CPU; `cpu`, `cuda`, `cuda:N` or `mps` ask for one, and one that is not there is a one-line
    error. Runs record `str(device)`, so which one `auto` chose is never a guess."""
    import torch

    dist = dist or Dist()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist.local_rank)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"device {name!r}: CUDA is not available on this machine")
    if name == "mps" and not _mps_available():
        raise BadInput("device 'mps': Apple's Metal backend is not available on this machine")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise BadInput(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and dist.world > 1 and dev.index is None:
        dev = torch.device("cuda", dist.local_rank)
    return dev


def pin_numerics(threads: int) -> None:
    """Fix what decides a run's floating-point results on a CPU: the number of threads that
    split each reduction (a different count sums in a different order) and torch's choice of
    deterministic kernels. Called once per run with the configured count, never with one that
    a timing probe picked, so a busy machine cannot change the numbers."""
    import torch

    if threads < 1:
        from bodyscene.configs import ConfigError

        raise ConfigError("threads", f"at least 1, got {threads}")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels use here (ATEN_CPU_CAPABILITY lowers it): with
    the thread count, what decides the order floats are summed in; recorded beside results."""
    import torch  # noqa: F401  (numerics reads the loaded module)

    from bodyscene.provenance import numerics

    return numerics()["cpu_capability"]
