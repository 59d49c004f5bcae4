"""What every run writes beside its outputs so it can be repeated: the resolved configuration,
the seed, the command line, and the versions of Python and the packages that shape the numbers."""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("bodyscene", "numpy", "pandas", "scipy", "statsmodels", "torch", "torchvision",
             "opencv-python-headless", "opencv-python", "ultralytics", "psychopy", "matplotlib")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def numerics() -> dict[str, Any] | None:
    """What decides the order floats are summed in, where torch is loaded (it is imported by
    whatever trained or scored; a core-only run has none): its thread count, CPU instruction
    set and deterministic-kernel switch, and the variables that lower the instruction set."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    found: dict[str, Any] = {"torch_threads": torch.get_num_threads(),
                             "deterministic": torch.are_deterministic_algorithms_enabled()}
    try:
        found["cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    except AttributeError:  # torch < 2.1
        found["cpu_capability"] = "unknown"
    for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            found[name] = os.environ[name]
    return found


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def write_run_record(out_dir: str | Path, config: Any, seed: int | None,
                     name: str = "run.json", **extra: Any) -> Path:
    """Write `<out_dir>/<name>` with config, seed, argv, versions and any extra facts
    (e.g. a manifest's hash). Written atomically; an existing record is kept under a numbered
    name rather than overwritten."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    if target.exists():
        stem, suffix = target.stem, target.suffix
        k = 1
        while (out_dir / f"{stem}.{k}{suffix}").exists():
            k += 1
        target.rename(out_dir / f"{stem}.{k}{suffix}")
    record = {
        "config": _jsonable(config),
        "seed": seed,
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
        "numerics": numerics(),
        **{k: _jsonable(v) for k, v in extra.items()},
    }
    from .tables import write_json_atomic

    return write_json_atomic(target, record, sort_keys=True)
