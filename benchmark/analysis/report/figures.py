"""The report's figures (matplotlib, Agg backend), each saved as PNG and SVG.

Simulated observers are hatched and named "(simulated)" in every legend, and a figure that
shows any simulated data says so in its title."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bodyscene.benchmark.analysis.groups import HUMANS, SIMULATED_HUMANS  # noqa: E402

SIM_NOTE = " (includes simulated observers)"


def save_figure(fig, stem: Path, dpi: int = 150) -> list[Path]:
    """Every figure the suite makes is saved here: `stem`.png and `stem`.svg, then closed."""
    paths = []
    # Each figure lays itself out (tight_layout); bbox_inches="tight" would draw it twice more.
    # SVG text stays text (smaller, editable, faster to write).
    with plt.rc_context({"svg.fonttype": "none"}):
        for ext in ("png", "svg"):
            path = stem.with_name(f"{stem.name}.{ext}")
            fig.savefig(path, dpi=dpi)
            paths.append(path)
    plt.close(fig)
    return paths


def save(fig, out_dir: Path, name: str, dpi: int = 150) -> list[Path]:
    return save_figure(fig, out_dir / name, dpi)


def group_style(groups: list[str]) -> dict[str, dict]:
    palette = plt.get_cmap("tab10").colors
    style, k = {}, 0
    for g in groups:
        if g == HUMANS:
            style[g] = {"color": "0.25"}
        elif g == SIMULATED_HUMANS:
            style[g] = {"color": "0.65", "hatch": "//", "edgecolor": "0.3"}
        else:
            style[g] = {"color": palette[k % len(palette)]}
            k += 1
    return style


def error_bars(value, low, high) -> list[list[float]]:
    """Lower and upper error bar lengths, an undefined interval drawn as none. As lists:
    matplotlib warns (numpy deprecation) on a (2, 1) array when a plot has a single bar."""
    err = np.vstack([np.asarray(value, float) - np.asarray(low, float),
                     np.asarray(high, float) - np.asarray(value, float)])
    return np.nan_to_num(err).tolist()


def legend(ax, **kwargs) -> None:
    """A legend only when something in the axes is labelled (matplotlib warns on an empty
    one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _title(ax, text: str, simulated: bool) -> None:
    """A title wrapped to the figure's width (figures are not cropped to their contents)."""
    width = max(30, int(ax.figure.get_figwidth() * 11))
    ax.set_title(textwrap.fill(text + (SIM_NOTE if simulated else ""), width), fontsize=10)


def accuracy_by_condition(acc: pd.DataFrame, groups: list[str], conditions: list[str]):
    """The paper's figure: accuracy per condition for people and each model, 95% intervals,
    chance as a dashed line."""
    width = 0.8 / max(1, len(groups))
    style = group_style(groups)
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 0.3 * len(conditions) * len(groups) + 2)),
                                    4.0))
    x = np.arange(len(conditions))
    for j, g in enumerate(groups):
        sub = acc[acc["group"] == g].set_index("condition").reindex(conditions)
        pos = x + (j - (len(groups) - 1) / 2) * width
        err = error_bars(sub["accuracy"], sub["ci_low"], sub["ci_high"])
        ax.bar(pos, sub["accuracy"], width, yerr=err, capsize=2, label=g,
               **style[g])
    chance = acc.groupby("condition")["chance"].mean().reindex(conditions).to_numpy()
    for i, c in enumerate(chance):
        ax.hlines(c, i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1,
                  label="chance" if i == 0 else None)
    ax.set_xticks(x, conditions)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("accuracy (offered choices)")
    _title(ax, "Accuracy by condition, 95% hierarchical bootstrap intervals",
           bool(acc["simulated"].any()))
    legend(ax, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def regression_effects(reg: pd.DataFrame):
    """Forest plot of the fixed effects (log-odds) of both fits; terms flagged for separation
    (a cell at 0% or 100%: no finite estimate) are left out, so the axis shows real effects."""
    fixed = reg[reg["term"].str.contains(r"\[", regex=True) & reg["estimate"].notna()
                & ~reg["separation"].fillna(False).astype(bool)]
    terms = list(dict.fromkeys(fixed["term"]))
    fig, ax = plt.subplots(figsize=(7.0, 0.28 * len(terms) + 1.5))
    methods = list(dict.fromkeys(fixed["method"]))
    for k, method in enumerate(methods):
        sub = fixed[fixed["method"] == method].set_index("term").reindex(terms)
        y = np.arange(len(terms)) + (k - (len(methods) - 1) / 2) * 0.3
        ax.errorbar(sub["estimate"], y,
                    xerr=error_bars(sub["estimate"], sub["ci_low"], sub["ci_high"]),
                    fmt="o" if k == 0 else "s", ms=3, capsize=2, label=method)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(np.arange(len(terms)), terms, fontsize=7)
    ax.invert_yaxis()
    n_left = reg.loc[reg["separation"].fillna(False).astype(bool), "term"].nunique()
    ax.set_xlabel("effect (log-odds)" + (f"; {n_left} term(s) at 0%/100% cells left out"
                                         if n_left else ""))
    _title(ax, "correct ~ condition * group + (1 + condition | participant) + (1 | item)",
           bool(reg["simulated"].any()))
    legend(ax, fontsize=7)
    fig.tight_layout()
    return fig


def contrasts(con: pd.DataFrame):
    """Body minus background per group with intervals and Holm-adjusted p."""
    fig, ax = plt.subplots(figsize=(6.0, 0.4 * len(con) + 1.4))
    y = np.arange(len(con))
    err = error_bars(con["estimate"], con["ci_low"], con["ci_high"])
    ax.errorbar(con["estimate"], y, xerr=err, fmt="o", capsize=3, color="k")
    for yi, (_, row) in zip(y, con.iterrows()):
        if not np.isfinite(row["estimate"]):
            ax.annotate("undefined (see the table's note)", (0, yi), xytext=(4, 6),
                        textcoords="offset points", fontsize=7, color="0.4")
            continue
        text = (f"p_holm={row['p_holm']:.3g}" if np.isfinite(row["p_holm"])
                else "no p (see note)")
        ax.annotate(text, (row["estimate"], yi), xytext=(4, 6), textcoords="offset points",
                    fontsize=7)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, con["group"])
    ax.invert_yaxis()
    ax.set_xlabel("accuracy difference (body - background)")
    _title(ax, "Planned contrast: body vs background", bool(con["simulated"].any()))
    fig.tight_layout()
    return fig


def consistency(pairs: pd.DataFrame, summary: pd.DataFrame, models: list[str]):
    """Error consistency, per-condition kappa averaged over conditions. With people: the
    people-people pairs (first column) and each model with each person (dots), their means
    (bars), beside the people-people interquartile range (grey band) and mean (line, the
    ceiling), models in leaderboard order. Without people: each model with each other model;
    there is no ceiling."""
    ref = summary["human_group"].iloc[0] if len(summary) else None
    summary = summary[summary["human_group"] == ref]
    columns = ([ref] if ref is not None else []) + models
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(columns) + 2.5), 3.6))
    x = pd.Series(np.arange(len(columns)), index=columns, dtype=float)
    dots = pairs.dropna(subset=["kappa"])
    if ref is not None:
        first = summary.iloc[0]
        if np.isfinite(first["human_human_kappa"]):
            ax.axhspan(first["human_human_q25"], first["human_human_q75"], color="0.88",
                       label=f"{ref}-{ref}: interquartile range")
            ax.axhline(first["human_human_kappa"], color="0.4", lw=1.2,
                       label=f"{ref}-{ref}: mean (the ceiling)")
        means = summary.set_index("observer")["kappa_with_humans"].reindex(columns)
        colours = ["0.55"] + ["tab:blue"] * len(models)
        ax.bar(x, means, 0.6, color=colours, alpha=0.8,
               hatch="//" if ref == SIMULATED_HUMANS else None)
        dots = dots[(dots["group1"] == ref) | (dots["group2"] == ref)]
        other = np.where(dots["group1"] == ref, dots["group2"], dots["group1"])
        title = ("Error consistency with each person (dots), per-condition mean" if models
                 else "No models yet: error consistency between people (dots: pairs), "
                      "per-condition mean")
    else:
        dots = dots[dots["group1"].isin(models) & dots["group2"].isin(models)]
        both = pd.concat([dots.assign(me=dots["group1"]), dots.assign(me=dots["group2"])])
        ax.bar(x, both.groupby("me")["kappa"].mean().reindex(columns), 0.6, color="tab:blue",
               alpha=0.8)
        dots, other = both, both["me"].to_numpy()
        title = "No people: error consistency of each model with the other models (no ceiling)"
    pos = x.reindex(other).to_numpy(float)
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(pos))
    ax.plot(pos + jitter, dots["kappa"], ".", color="k", ms=2, alpha=0.5)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    labels = [f"{c}-{c}" if c == ref else c for c in columns]
    ax.set_xticks(x.to_numpy(), labels, rotation=30, ha="right")
    ax.set_ylabel("error consistency (kappa)")
    _title(ax, title, ref == SIMULATED_HUMANS)
    legend(ax, fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def likeness(like: pd.DataFrame):
    """Each model's distance to the human profile in units of the human noise ceiling."""
    profiles = list(dict.fromkeys(like["profile"]))
    models = list(dict.fromkeys(like["model"]))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(models) + 2), 3.6))
    width = 0.8 / max(1, len(profiles) * like["human_group"].nunique())
    k = 0
    for hg in dict.fromkeys(like["human_group"]):
        for profile in profiles:
            sub = like[(like["profile"] == profile) & (like["human_group"] == hg)]
            sub = sub.set_index("model").reindex(models)
            pos = np.arange(len(models)) + (k - 0.5) * width
            ax.bar(pos, sub["distance_ratio"], width, label=f"{profile} vs {hg}",
                   hatch="//" if hg == SIMULATED_HUMANS else None)
            k += 1
    ax.axhline(1.0, color="k", ls="--", lw=1, label="human noise ceiling")
    ax.set_xticks(np.arange(len(models)), models, rotation=30, ha="right")
    ax.set_ylabel("distance / human ceiling distance")
    _title(ax, "Human-likeness of accuracy profiles (1 = at the ceiling)",
           bool(like["simulated"].any()))
    legend(ax, fontsize=7)
    fig.tight_layout()
    return fig


def conflict(con: pd.DataFrame, groups: list[str]):
    """Shares of conflict answers that follow the body and the background, per group;
    simulated groups hatched and labelled like everywhere else."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.8 * len(groups) + 2), 3.6))
    x = np.arange(len(groups))
    simulated = con.groupby("group")["simulated"].all().reindex(groups).fillna(False)
    for k, (cue, color) in enumerate([("body", "tab:orange"), ("background", "tab:green")]):
        sub = con[con["cue"] == cue].set_index("group").reindex(groups)
        err = error_bars(sub["share"], sub["ci_low"], sub["ci_high"])
        bars = ax.bar(x + (k - 0.5) * 0.38, sub["share"], 0.38, yerr=err,
                      capsize=2, color=color, label=f"follows the {cue}")
        for bar, sim in zip(bars, simulated):
            if sim:
                bar.set_hatch("//")
                bar.set_edgecolor("0.3")
    ax.axhline(float(con["chance"].mean()), color="k", ls="--", lw=1, label="chance")
    labels = [f"{g} (simulated)" if sim and "simulated" not in g else g
              for g, sim in zip(groups, simulated)]
    ax.set_xticks(x, labels, rotation=30, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of conflict answers")
    _title(ax, "Conflict trials: body or background?", bool(con["simulated"].any()))
    legend(ax, fontsize=8)
    fig.tight_layout()
    return fig


def patterns(acc: pd.DataFrame, board: pd.DataFrame, conditions: list[str]):
    """Each model's accuracy by condition beside the people's, one panel per model in
    leaderboard order: the shape of the profile, not only its height, is what is compared."""
    ref = board["observer"].iloc[0]
    models = board["observer"].iloc[1:].tolist()
    cols = min(4, max(1, len(models)))
    rows = int(np.ceil(len(models) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols + 0.4, 2.3 * rows + 0.5),
                             sharey=True, squeeze=False)
    x = np.arange(len(conditions))
    human = acc[acc["group"] == ref].set_index("condition").reindex(conditions)
    chance = acc.groupby("condition")["chance"].mean().reindex(conditions).to_numpy()
    human_sim = bool(human["simulated"].fillna(False).any())
    for ax, (_, row) in zip(axes.ravel(), board.iloc[1:].iterrows()):
        m = acc[acc["group"] == row["observer"]].set_index("condition").reindex(conditions)
        ax.fill_between(x, human["ci_low"], human["ci_high"], color="0.8", lw=0)
        ax.plot(x, human["accuracy"], marker="o", color="0.35", ms=3, lw=1.2,
                ls="--" if human_sim else "-", label=ref)
        ax.errorbar(x, m["accuracy"], yerr=error_bars(m["accuracy"], m["ci_low"],
                                                       m["ci_high"]), fmt="o-",
            color="tab:blue", ms=3, lw=1.5, capsize=2, label="model")
        ax.plot(x, chance, ":", color="k", lw=0.8)
        rank = "" if not np.isfinite(row["rank"]) else f"#{int(row['rank'])} "
        ax.set_title(f"{rank}{row['observer']}", fontsize=9)
        ax.set_xticks(x, conditions, fontsize=7)
        ax.set_ylim(0, 1.02)
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=8)
    legend(axes.ravel()[0], fontsize=7, loc="lower left")
    title = ("Each model (blue) against the people (grey band: 95% interval), ranked by "
             "human-likeness" + (SIM_NOTE if human_sim else ""))
    # wrapped to the figure's width (about 12 characters an inch at 10 pt): never clipped
    import textwrap
    fig.suptitle(textwrap.fill(title, int(fig.get_figwidth() * 12)), fontsize=10)
    fig.tight_layout()
    return fig


def confusions(conf: pd.DataFrame, groups: list[str], conditions: list[str],
               actions: list[str]):
    """Row-normalised confusion matrices, one row of blocks per group (in report order), one
    column per condition, drawn as a single mosaic image: one axes instead of one per panel
    keeps the report fast with many models."""
    responses = actions + sorted(set(conf["response"]) - set(actions))
    na, nr, gap = len(actions), len(responses), 1
    mosaic = np.full((len(groups) * (na + gap) - gap, len(conditions) * (nr + gap) - gap),
                     np.nan)
    for r, group in enumerate(groups):
        sub = conf[conf["group"] == group]
        for c, cond in enumerate(conditions):
            cell = sub[sub["condition"] == cond]
            mat = (cell.pivot_table(index="action", columns="response", values="n",
                                    aggfunc="sum")
                   .reindex(index=actions, columns=responses).fillna(0).to_numpy())
            with np.errstate(invalid="ignore", divide="ignore"):
                mat = mat / mat.sum(axis=1, keepdims=True)
            y0, x0 = r * (na + gap), c * (nr + gap)
            mosaic[y0:y0 + na, x0:x0 + nr] = mat
    scale = 0.16
    fig, ax = plt.subplots(figsize=(mosaic.shape[1] * scale + 2.4,
                                    mosaic.shape[0] * scale + 1.6))
    ax.imshow(np.ma.masked_invalid(mosaic), cmap="Blues", vmin=0, vmax=1,
              interpolation="nearest")
    fs = 6 if na <= 12 else 4
    ax.set_xticks([c * (nr + gap) + i for c in range(len(conditions)) for i in range(nr)],
                  responses * len(conditions), rotation=90, fontsize=fs)
    ax.set_yticks([r * (na + gap) + i for r in range(len(groups)) for i in range(na)],
                  actions * len(groups), fontsize=fs)
    for c, cond in enumerate(conditions):
        ax.text(c * (nr + gap) + (nr - 1) / 2, -1.0, cond, ha="center", va="bottom",
                fontsize=9)
    simulated = conf.groupby("group")["simulated"].any()
    for r, group in enumerate(groups):
        sim = bool(simulated.get(group, False)) and "simulated" not in group
        ax.text(-0.14, 1 - (r * (na + gap) + na / 2) / mosaic.shape[0],
                group + (" (simulated)" if sim else ""), transform=ax.transAxes,
                ha="right", va="center", fontsize=8)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel("response", fontsize=8)
    _title(ax, "Confusions: rows true action (the body's on conflict), columns response, "
           "rows sum to 1", bool(conf["simulated"].any()))
    ax.title.set_position((0.5, 1.0 + 1.5 / mosaic.shape[0]))
    fig.tight_layout()
    return fig
