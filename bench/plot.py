"""PNG timelines: each agent over time, install vs test (matplotlib, Agg: no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # after selecting the backend

from bench.metrics import Segment, timeline

COLOURS = {"install": "#d95f02", "test": "#1b9e77"}


def plot_timelines(runs: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path:
    """One panel per run (policy name -> job records), one row per agent; saved as `path`."""
    figure, axes = plt.subplots(len(runs), 1, figsize=(11, 2.2 + 1.6 * len(runs)), squeeze=False)
    for axis, (name, records) in zip(axes[:, 0], runs.items(), strict=True):
        segments = timeline(records)
        agents = sorted({s.agent for s in segments})
        for row, agent in enumerate(agents):
            for kind in ("install", "test"):
                bars = [(s.start_s, s.length_s) for s in segments if _is(s, agent, kind)]
                axis.broken_barh(bars, (row - 0.4, 0.8), facecolors=COLOURS[kind], label=kind)
        axis.set_yticks(range(len(agents)), [f"agent {i + 1}" for i in range(len(agents))])
        end = max((s.start_s + s.length_s for s in segments), default=0.0)
        installs = sum(1 for s in segments if s.kind == "install")
        axis.set_title(f"{name}: makespan {end:.1f} s, {installs} installs")
        axis.set_xlabel("seconds since the suite was submitted")
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        axis.legend(unique.values(), unique.keys(), loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _is(segment: Segment, agent: str, kind: str) -> bool:
    return segment.agent == agent and segment.kind == kind
