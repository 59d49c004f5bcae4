"""`bodyscene study ...`: the paper's open checks, each a small experiment on the demo world.

- `seeds`: the demo over several seeds, mean and spread of every accuracy and of the effect.
- `loss-ablation`: DomainNet with the three-term loss vs the combined term only.
- `fusion`: DomainNet's stream fusion: sum vs learned-weighted vs concat-MLP.
- `mask-noise`: how accuracy degrades as segmentation noise grows (0 to 20 %).

Every study trains and evaluates through the same harness as the demo, scores the test trials
with the same statistics as the report, and writes a CSV, a figure (PNG and SVG) and its run
record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bodyscene import CONDITIONS
from bodyscene.tables import fresh_output_dir, write_frame_atomic

from .demo import MODELS, run_demo
from .pipeline import accuracy_by_condition, build_world, evaluate_model, train_model


def _plot(table: pd.DataFrame, variant_col: str, title: str, out: Path,
          x_col: str = "condition") -> list[Path]:
    import matplotlib.pyplot as plt
    from bodyscene.benchmark.analysis.report.figures import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    xs = list(dict.fromkeys(table[x_col].tolist()))
    variants = list(dict.fromkeys(table[variant_col].tolist()))
    width = 0.8 / max(1, len(variants))
    for j, v in enumerate(variants):
        sub = table[table[variant_col] == v].set_index(x_col).reindex(xs)
        pos = np.arange(len(xs)) + (j - (len(variants) - 1) / 2) * width
        err = np.vstack([sub["accuracy"] - sub["ci_low"], sub["ci_high"] - sub["accuracy"]])
        ax.bar(pos, sub["accuracy"], width, yerr=err, capsize=2, label=str(v))
    chance = float(table["chance"].mean())
    ax.axhline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:.2f})")
    ax.set_xticks(np.arange(len(xs)), [str(x) for x in xs])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (restricted choice)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    return save_figure(fig, out)


def _finish(out: Path, name: str, table: pd.DataFrame, variant_col: str, title: str,
            cfg, x_col: str = "condition") -> Path:
    from bodyscene.provenance import write_run_record

    csv = out / f"{name}.csv"
    write_frame_atomic(csv, table)
    _plot(table, variant_col, title, out / name, x_col=x_col)
    write_run_record(out, cfg, cfg.seed, name="study_run.json", study=name)
    print(table.to_string(index=False))
    print(f"wrote {csv} and {name}.png/.svg")
    return csv


def _variants(cfg, out: Path, name: str, variants: dict[str, dict]) -> pd.DataFrame:
    """Build the demo world once, train and evaluate DomainNet once per variant."""

    trials = build_world(cfg, out / "stimuli")
    rows = []
    for label, options in variants.items():
        run = train_model(cfg, trials, out / "runs" / label, "domainnet", **options)
        pred = evaluate_model(run, trials, out / "predictions" / f"domainnet-{label}.csv",
                              cfg.progress, cfg.checkpoint)[0]
        table = accuracy_by_condition(pred, trials, cfg.seed, cfg.report.bootstrap)
        rows.append(table.assign(**{name: label}))
    return pd.concat(rows, ignore_index=True)


def study_loss_ablation(cfg, out: Path) -> Path:
    out = fresh_output_dir(out)
    table = _variants(cfg, out, "loss_terms", {"all": {"loss_terms": "all"},
                                               "combined-only": {"loss_terms": "combined-only"}})
    return _finish(out, "loss_terms", table, "loss_terms",
                   "DomainNet: three-term loss vs combined term only", cfg)


def study_fusion(cfg, out: Path) -> Path:
    out = fresh_output_dir(out)
    table = _variants(cfg, out, "fusion", {f: {"fusion": f} for f in
                                           ("sum", "learned-weighted", "concat-mlp")})
    return _finish(out, "fusion", table, "fusion", "DomainNet: stream fusion", cfg)


def study_mask_noise(cfg, out: Path, levels: list[float], kinds: list[str],
                     retrain: bool) -> Path:
    """Noise is applied to the masks the stimuli are composed with (as a worse segmenter
    would): by default models trained on clean masks are tested on noisier ones; with
    `retrain` each noise level gets its own training run (train and test equally noisy)."""
    from bodyscene.stimuli.compose import MaskNoise


    out = fresh_output_dir(out)
    rows = []
    clean = build_world(cfg, out / "stimuli" / "clean")
    runs = {m: train_model(cfg, clean, out / "runs" / f"{m}-clean", m) for m in MODELS}
    for kind in kinds:
        for level in levels:
            label = f"{kind}-{level:g}"
            trials = clean if level == 0 else build_world(cfg, out / "stimuli" / label,
                                                          MaskNoise(kind, level))
            for m in MODELS:
                run = runs[m]
                if retrain and level > 0:
                    run = train_model(cfg, trials, out / "runs" / f"{m}-{label}", m)
                pred = evaluate_model(run, trials, out / "predictions" / label / f"{m}.csv",
                                      cfg.progress, cfg.checkpoint)[0]
                table = accuracy_by_condition(pred, trials, cfg.seed, cfg.report.bootstrap)
                rows.append(table.assign(model=m, noise_kind=kind, noise=level))
    table = pd.concat(rows, ignore_index=True)
    csv = out / "mask_noise.csv"
    write_frame_atomic(csv, table)
    _plot_noise(table, out / "mask_noise", retrain)
    from bodyscene.provenance import write_run_record

    write_run_record(out, cfg, cfg.seed, name="study_run.json", study="mask-noise",
                     levels=levels, kinds=kinds, retrain=retrain)
    print(table.to_string(index=False))
    print(f"wrote {csv} and mask_noise.png/.svg")
    return csv


def _plot_noise(table: pd.DataFrame, out: Path, retrain: bool) -> None:
    import matplotlib.pyplot as plt
    from bodyscene.benchmark.analysis.report.figures import save_figure

    kinds = list(dict.fromkeys(table["noise_kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        sub = table[table["noise_kind"] == kind]
        for (model, cond), g in sub.groupby(["model", "condition"], sort=False):
            g = g.sort_values("noise")
            # colour = condition, line = model: one condition reads across both models
            colour = f"C{CONDITIONS.index(cond)}" if cond in CONDITIONS else None
            ax.errorbar(g["noise"] * 100, g["accuracy"],
                        yerr=[g["accuracy"] - g["ci_low"], g["ci_high"] - g["accuracy"]],
                        marker="o" if model == "domainnet" else "s", ms=3, capsize=2, lw=1,
                        color=colour, ls="-" if model == "domainnet" else ":",
                        label=f"{model} {cond}")
        ax.axhline(float(sub["chance"].mean()), color="k", ls="--", lw=1)
        ax.set_xlabel(f"mask noise ({kind}, % of mask area)")
        ax.set_ylim(0, 1)
        ax.set_title(f"{kind}: {'retrained per level' if retrain else 'trained on clean masks'}",
                     fontsize=9)
    axes[0][0].set_ylabel("accuracy (restricted choice)")
    axes[0][-1].legend(fontsize=7, loc="lower left", ncols=2)
    fig.tight_layout()
    save_figure(fig, out)


HEADLINE = (("domainnet", "body"), ("domainnet", "original"), ("baseline", "original"),
            ("baseline", "body"))


def study_seeds(cfg, out: Path, seeds: list[int], threads: list[int] | None = None) -> Path:
    """The demo once per seed and thread count (each seed's world rendered once: stimuli do
    not depend on threads); the table every claim about the demo's effect rests on."""
    from bodyscene.benchmark.harness.runtime import cpu_capability

    out = fresh_output_dir(out)
    threads = list(threads or [cfg.threads])
    isa = cpu_capability()
    rows, checks = [], []
    for seed in seeds:
        world = None
        for n in threads:
            run_cfg = replace(cfg, seed=seed, train=replace(cfg.train, threads=n))
            name = f"seed-{seed}" + (f"-threads-{n}" if len(threads) > 1 else "")
            result = run_demo(run_cfg, out / name, trials=world)
            world = world or Path(result["trials"])
            key = {"seed": seed, "threads": n, "cpu_capability": isa}
            for group, by_cond in result["summary"]["groups"].items():
                for cond, s in by_cond.items():
                    rows.append({**key, "group": group, "condition": cond,
                                 "accuracy": s["accuracy"], "chance": s["chance"]})
            for c in result["checks"]:
                checks.append({**key, **c})
            checks.append({**key, "check": "wall time (s)", "holds": True,
                           "measured": result["timings"]["total_s"]})
    table = pd.DataFrame(rows)
    agg = (table.groupby(["group", "condition"], sort=False)["accuracy"]
           .agg(["mean", "std", "min", "max", "count"]).reset_index())
    agg["chance"] = table.groupby(["group", "condition"], sort=False)["chance"].mean().values
    write_frame_atomic(out / "seeds.csv", table)
    write_frame_atomic(out / "seeds_summary.csv", agg)
    write_frame_atomic(out / "seeds_checks.csv", pd.DataFrame(checks))
    plot = agg.rename(columns={"mean": "accuracy"}).assign(
        ci_low=lambda d: d["accuracy"] - d["std"].fillna(0),
        ci_high=lambda d: d["accuracy"] + d["std"].fillna(0))
    _plot(plot, "group", f"demo over seeds {seeds} x threads {threads}: mean ± SD",
          out / "seeds")
    from bodyscene.provenance import write_run_record

    write_run_record(out, cfg, None, name="study_run.json", study="seeds", seeds=seeds,
                     threads=threads, cpu_capability=isa)
    print(headline_table(table).to_string(index=False))
    print(agg.to_string(index=False))
    print(pd.DataFrame(checks).to_string(index=False))
    return out / "seeds_summary.csv"


def headline_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run (seed x threads x CPU capability): the cells the demo's claim rests on
    (DomainNet and the baseline on body-only and original trials)."""
    runs = ["seed", "threads", "cpu_capability"]
    cells = table.set_index(runs + ["group", "condition"])["accuracy"]
    wide = pd.DataFrame({f"{g} {c}": cells.xs((g, c), level=("group", "condition"))
                         for g, c in HEADLINE})
    return wide.reset_index()
