"""PNG plots of a suite run: per op, throughput against batch/memory size and against dim.

Log-log axes, one line per implementation (hdc solid, baselines dashed), error bars from the
interquartile range. Needs matplotlib (the ``bench`` extra); without it ``write_plots`` returns
the reason instead of files.
"""
import os

from .impls import OPS, UNITS

_SIZE_LABEL = {"bind": "batch size (vector pairs)", "permute": "batch size (vectors)",
               "bundle": "vectors bundled", "cdist": "memory size (stored vectors)",
               "topk": "memory size (stored vectors)", "encode": "batch size (samples)",
               "attention": "sequence length (tokens)"}


def _style(names):
    """A fixed color and line style per implementation, the same in every plot."""
    import matplotlib
    cmap = matplotlib.colormaps["tab10"]
    return {n: {"color": cmap(i % 10), "linestyle": "-" if n.startswith("hdc[") else "--",
                "marker": "o" if n.startswith("hdc[") else "s"} for i, n in enumerate(names)}


def _panel(ax, cases, xkey, xlabel, unit, style):
    plotted = False
    names = []
    for c in cases:
        names += [n for n in c["results"] if n not in names]
    for name in names:
        pts = sorted((c[xkey], c["results"][name]) for c in cases
                     if name in c["results"] and c["results"][name]["status"] == "ok")
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ys = [p[1]["throughput"] for p in pts]
        lo = [max(y - p[1]["throughput_q1"], 0) for y, p in zip(ys, pts)]
        hi = [max(p[1]["throughput_q3"] - y, 0) for y, p in zip(ys, pts)]
        ax.errorbar(xs, ys, yerr=[lo, hi], label=name, capsize=2, linewidth=1.6, markersize=4, **style[name])
        plotted = True
    from matplotlib.ticker import NullFormatter
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())   # crowded 2x10^2, 3x10^2 labels otherwise
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"throughput ({unit}, log)")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.1)
    if not plotted:
        ax.text(0.5, 0.5, "no measurements", ha="center", va="center", transform=ax.transAxes)


def write_plots(res, out_dir):
    """Write one PNG per op (and query count); returns (file names, reason or None)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "missing: matplotlib not installed (pip install 'hdc[bench]')"
    os.makedirs(out_dir, exist_ok=True)
    all_names = []
    for c in res["cases"]:
        all_names += [n for n in c["results"] if n not in all_names]
    style = _style(all_names)
    files = []
    for op in OPS:
        op_cases = [c for c in res["cases"] if c["op"] == op]
        for nq in sorted({c["nq"] for c in op_cases}):
            cases = [c for c in op_cases if c["nq"] == nq]
            sweep_dims = {c["dim"] for c in cases if "size" in c["tags"]}
            by_size = [c for c in cases if ("size" in c["tags"] or "target" in c["tags"]) and c["dim"] in sweep_dims]
            by_dim = [c for c in cases if "dim" in c["tags"]]
            if not by_size and not by_dim:
                continue
            panels = [p for p in (("n", by_size), ("dim", by_dim)) if p[1]]
            fig, axes = plt.subplots(1, len(panels), figsize=(6.75 * len(panels), 4.8), squeeze=False)
            axes = axes[0]
            queries = f", {nq:,} quer{'y' if nq == 1 else 'ies'}" if op in ("cdist", "topk") else ""
            for ax, (key, panel_cases) in zip(axes, panels):
                if key == "n":
                    _panel(ax, panel_cases, "n", _SIZE_LABEL[op], UNITS[op], style)
                    ax.set_title(f"against size (dim {panel_cases[0]['dim']:,})")
                else:
                    _panel(ax, panel_cases, "dim", "dimension (elements per hypervector)", UNITS[op], style)
                    ax.set_title(f"against dim ({_SIZE_LABEL[op].split(' (')[0]} {panel_cases[0]['n']:,})")
            fig.suptitle(f"{op}{queries}: throughput, higher is better (median, IQR bars)", fontsize=12)
            handles = {}
            for ax in axes:
                for h, label in zip(*ax.get_legend_handles_labels()):
                    handles.setdefault(label, h)
            order = [n for n in all_names if n in handles]
            if order:
                fig.legend([handles[n] for n in order], order, loc="center right", fontsize=9,
                           title="implementation")
            fig.tight_layout(rect=(0, 0, 0.84 if len(panels) == 2 else 0.72, 1))
            name = f"{op}.png" if op not in ("cdist", "topk") or nq == 1 else f"{op}_{nq}q.png"
            fig.savefig(os.path.join(out_dir, name), dpi=110)
            plt.close(fig)
            files.append(name)
    return files, None
