"""Run records say what decides a result's last digits (issue 20): torch's threads, CPU
instruction set and deterministic switch where torch is loaded, nothing where it is not."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from bodyscene.provenance import numerics, write_run_record


def test_record_states_threads_and_instruction_set(tmp_path, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")   # recorded as set, whatever torch did
    try:
        torch.set_num_threads(1)
        path = write_run_record(tmp_path, {"a": 1}, 0)
    finally:
        torch.set_num_threads(before)
    got = json.loads(path.read_text())["numerics"]
    assert got["torch_threads"] == 1
    assert got["cpu_capability"] == str(torch.backends.cpu.get_cpu_capability())
    assert got["deterministic"] == torch.are_deterministic_algorithms_enabled()
    assert got["ATEN_CPU_CAPABILITY"] == "avx2"
    assert numerics()["torch_threads"] == before


def test_record_without_torch_says_none(tmp_path):
    """A core-only run (validation, report) never imports torch to write its record."""
    code = ("import sys, json; from bodyscene.provenance import write_run_record; "
            f"p = write_run_record({str(tmp_path)!r}, {{}}, 0); "
            "assert 'torch' not in sys.modules, 'torch was imported'; "
            "print(json.load(open(p))['numerics'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
