"""Writers for a suite run: ``results.json`` (every figure), ``report.md`` (tables) and
``readme_section.md`` (the README's performance section: targets, speedups, accuracy, bytes).

>>> from hdc.bench.report import fmt_time
>>> fmt_time(1.5e-5), fmt_time(0.25)
('15 us', '250 ms')
"""
import json
import os

from .impls import OPS, UNITS


def fmt_time(seconds):
    """Seconds as a short string with a unit (ns, us, ms, s), 3 significant digits."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return f"{seconds:.3g} s"


def fmt_rate(x):
    """A rate with a k/M/G suffix."""
    if x is None:
        return "-"
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def fmt_bytes(n):
    if n is None:
        return "-"
    for suffix, scale in (("GB", 2 ** 30), ("MB", 2 ** 20), ("kB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n} B"


def write_json(results, path):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1, default=str)
        fh.write("\n")


def _short_status(status):
    """A table cell for a non-ok status; the full reason goes in a note below the table."""
    head = status.split(":", 1)[0]
    if status.startswith("fails: out of memory"):
        return "fails: OOM"
    return head


def machine_lines(res):
    """Markdown bullet lines describing the machine and software of a run."""
    m = res["machine"]
    cpu, h, deps = m["cpu"], m["hdc"], m["dependencies"]
    c = h["c_backend"]
    isa = (f"{c.get('isa')} (available: {', '.join(c.get('available_isas', [])) or '?'})"
           if c.get("available") else f"C backend not available ({c.get('reason')})")
    flags = cpu["simd_flags"] if isinstance(cpu["simd_flags"], str) else ", ".join(cpu["simd_flags"])
    lines = [
        f"- CPU: {cpu['model']} ({cpu['machine']}), {cpu['logical_cores']} logical cores, "
        f"{cpu['memory_gb']} GB RAM; SIMD: {flags}",
        f"- load average at start: {cpu['load_average']} (other processes share this machine)",
        f"- hdc {h['version']}; backends: {', '.join(h['backends'])}; C SIMD path: {isa}",
        f"- threads: {res['threads']}",
        f"- Python {m['python']['version']}, " + ", ".join(f"{k} {v}" for k, v in deps.items()),
        f"- platform: {m['python']['platform']}",
    ]
    if h["unavailable"]:
        lines.append("- unavailable backends: " + "; ".join(f"{k}: {v}" for k, v in h["unavailable"].items()))
    return lines


def _impl_columns(cases):
    names = []
    for c in cases:
        for n in c["results"]:
            if n not in names:
                names.append(n)
    return names


def op_table(cases, notes):
    """Markdown table of one op's cases: time per call and time relative to the hdc reference."""
    names = _impl_columns(cases)
    head = "| dim | size | " + " | ".join(names) + " |"
    lines = [head, "|" + "---:|" * (len(names) + 2)]
    for c in cases:
        size = f"{c['nq']:,} x {c['n']:,}" if c["op"] in ("cdist", "topk") else f"{c['n']:,}"
        cells = []
        for n in names:
            r = c["results"].get(n)
            if r is None:
                cells.append("")
            elif r["status"] != "ok":
                key = (n, r["status"])
                if key not in notes:
                    notes[key] = len(notes) + 1
                cells.append(f"{_short_status(r['status'])} [{notes[key]}]")
            elif n == c["reference"]:
                cells.append(f"**{fmt_time(r['median_s'])}**")
            else:
                cells.append(f"{fmt_time(r['median_s'])} ({c['time_vs_reference'][n]:.3g}x)")
        lines.append(f"| {c['dim']:,} | {size} | " + " | ".join(cells) + " |")
    return lines


def _series_title(op, nq):
    if op in ("cdist", "topk"):
        return f"{op}, {nq:,} quer{'y' if nq == 1 else 'ies'}"
    return op


def render_markdown(res, plots=()):
    """The report.md text for a results dict."""
    out = ["# hdc benchmark report", ""]
    if res.get("command"):
        out += [f"Reproduce: `{res['command']}`", ""]
    out += [f"Mode `{res['mode']}`, started {res['started']}, took {res.get('duration_s', 0):.0f} s. "
            "Each time is the median of repeated runs (interleaved across implementations); "
            "the interquartile ranges are in results.json and in the details below. "
            "**Bold** is the hdc reference (the first hdc backend measured); `(N x)` is that cell's "
            "time divided by the reference time of the same run, so `(35x)` means hdc is 35 times faster.", "",
            "## Machine", "", *machine_lines(res), ""]
    targets = res.get("targets") or []
    if targets:
        out += ["## Targets (dim 10,000)", "", "| target | implementation | measured | threshold | met |",
                "|---|---|---:|---:|:---:|"]
        for t in targets:
            if t["value"] is None:
                measured = t.get("note") or "-"
            elif t["unit"] == "us":
                measured = fmt_time(t["value"] * 1e-6)
            else:
                measured = f"{t['value']:.3g} {t['unit']}"
            if t["value"] is not None and t.get("note"):
                measured += f" ({t['note']})"
            if t["threshold"] is None:
                thr = "-"
            else:
                thr = fmt_time(t["threshold"] * 1e-6) if t["unit"] == "us" else f"{t['threshold']:g} {t['unit']}"
            met = {True: "yes", False: "**no**", None: "-"}[t["met"]] if t["threshold"] is not None else (
                "runs" if t["met"] else "-")
            out.append(f"| {t['target']} | {t['implementation']} | {measured} | {thr} | {met} |")
        out.append("")
    out += limits_section(res.get("machine_limits"))
    out += ["## Time per call", ""]
    notes = {}
    for op in OPS:
        op_cases = [c for c in res["cases"] if c["op"] == op]
        for nq in sorted({c["nq"] for c in op_cases}):
            cases = [c for c in op_cases if c["nq"] == nq]
            cases.sort(key=lambda c: (c["dim"], c["n"]))
            out += [f"### {_series_title(op, nq)}", "", f"Throughput unit: {UNITS[op]}.", ""]
            out += op_table(cases, notes)
            out.append("")
    if notes:
        out += ["Notes:", ""]
        out += [f"{i}. {name}: {status}" for (name, status), i in notes.items()]
        out.append("")
    out += ["## Bytes per vector", "", "| implementation | " + " | ".join(
        f"dim {int(d):,}" for d in next(iter(res["implementations"].values()))["bytes_per_vector"]) + " | status |",
            "|---|" + "---:|" * len(next(iter(res["implementations"].values()))["bytes_per_vector"]) + "---|"]
    for name, info in res["implementations"].items():
        out.append(f"| {name} | " + " | ".join(f"{b:,}" for b in info["bytes_per_vector"].values())
                   + f" | {info['status']} |")
    out.append("")
    acc = res.get("accuracy")
    if acc is not None:
        out += ["## Accuracy at equal task", ""]
        if acc["status"] != "ok":
            out += [acc["status"], ""]
        else:
            out += [acc["task"] + ". Times are medians; predict covers the whole test set.", "",
                    "| model | representation | accuracy | encode (train+test) | fit | predict | "
                    "bytes / vector | model bytes |", "|---|---|---:|---:|---:|---:|---:|---:|"]
            for r in acc["rows"]:
                if r["status"] != "ok":
                    out.append(f"| {r['name']} | {r['status']} | | | | | | |")
                    continue
                out.append(f"| {r['name']} | {r['representation']} | {r['accuracy']:.1%} | "
                           f"{fmt_time(r['encode_s']) if r['encode_s'] else '-'} | {fmt_time(r['fit_s'])} | "
                           f"{fmt_time(r['predict_s'])} | {r['bytes_per_vector']:,} | {fmt_bytes(r['model_bytes'])} |")
            out.append("")
    if plots:
        out += ["## Plots", ""]
        out += [f"![{os.path.splitext(p)[0]}]({p})" for p in plots]
        out.append("")
    out += ["## Details", "", "<details><summary>every figure (median, IQR, throughput)</summary>", "",
            "| case | implementation | median | IQR | throughput | GB/s | bytes / vector | samples |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in res["cases"]:
        for name, r in c["results"].items():
            if r["status"] != "ok":
                out.append(f"| {c['label']} | {name} | {r['status']} | | | | | |")
                continue
            gbs = f"{r['gb_per_s']:.3g}" if "gb_per_s" in r else "-"
            out.append(f"| {c['label']} | {name} | {fmt_time(r['median_s'])} | {fmt_time(r['iqr_s'])} | "
                       f"{fmt_rate(r['throughput'])} {c['unit']} | {gbs} | {r['bytes_per_vector']:,} | "
                       f"{r['n']} x {r['inner']} |")
    out += ["", "</details>", ""]
    return "\n".join(out)


def limits_section(ml):
    """Markdown lines: the machine's limits, and each C kernel on every SIMD path against them."""
    if not ml:
        return []
    lim = ml["limits"]
    out = ["## Machine limits and SIMD paths", "",
           f"Measured in this run on {lim['threads']} threads: read bandwidth "
           f"{lim['read_gb_per_s']:.1f} GB/s (C XOR-reduce of {fmt_bytes(lim['read_bytes'])}, "
           f"{lim['isa']} path), copy bandwidth {lim['copy_gb_per_s']:.1f} GB/s (`np.copyto`, bytes "
           f"read + written), the bundle's input ({lim['bundle_rows']:,} x dim {lim['dim']:,}) "
           f"XOR-reduced in {fmt_time(lim['bundle_read_s'])} (timed round-robin with the bundle "
           f"on every path, input in cache as for the bundle's repeated calls: the bundle rows' "
           f"limit below).",
           "Each kernel runs on every SIMD path round-robin with its limit; *of limit* is the limit's "
           "time over the kernel's (1.0 = as fast as just reading the input), *vs lower path* the "
           "speed-up over the next-lower path of the same run and, for a kernel with a limit, in "
           "brackets the most it could be: the next-lower path's time over the limit's.", "",
           "| kernel | SIMD path | median | vs lower path | of limit | limit |", "|---|---|---:|---:|---:|---|"]
    for r in ml["isa_paths"]:
        up = f"{r['speedup_vs_next_lower']:.2f}x vs {r['next_lower']}" if r["next_lower"] else "-"
        if r.get("speedup_bound_vs_next_lower") is not None:
            up += f" (at most {r['speedup_bound_vs_next_lower']:.2f}x)"
        frac = f"{r['fraction_of_limit']:.2f}" if r["fraction_of_limit"] is not None else "-"
        lim_txt = f"{r['limit']} ({fmt_time(r['limit_s'])})" if r["limit"] else "compute-bound"
        out.append(f"| {r['case']} | {r['isa']} | {fmt_time(r['median_s'])} | {up} | {frac} | {lim_txt} |")
    out.append("")
    return out


def write_report(res, out_dir, plots=()):
    """Write results.json and report.md into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path, md_path = os.path.join(out_dir, "results.json"), os.path.join(out_dir, "report.md")
    res = dict(res, plots=list(plots))
    write_json(res, json_path)
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write(render_markdown(res, plots))
    with open(os.path.join(out_dir, "readme_section.md"), "w", encoding="utf-8") as fh:
        fh.write(render_readme_section(res))
    return json_path, md_path


_BASELINES = ("numpy f32 dot", "numpy f32 cosine", "torchhd BSC", "torchhd MAP", "faiss IndexBinaryFlat",
              "torch f32 softmax")


def speedup_table(res, dim=10_000):
    """Markdown: one row per case at ``dim`` (attention: every case), the hdc reference time and
    how many times faster it is than each baseline in the same run."""
    cases = [c for c in res["cases"] if c["dim"] == dim or (c["op"] == "attention" and "size" in c["tags"])]
    cols = [b for b in _BASELINES if any(b in c["results"] for c in cases)]
    lines = ["| op | size | hdc (reference) | time | " + " | ".join(f"vs {b}" for b in cols) + " |",
             "|---|---:|---|---:|" + "---:|" * len(cols)]
    order = {op: i for i, op in enumerate(OPS)}
    for c in sorted(cases, key=lambda c: (order[c["op"]], c["nq"], c["n"], c["dim"])):
        ref = c["reference"]
        if ref is None:
            continue
        size = f"{c['nq']:,} x {c['n']:,}" if c["op"] in ("cdist", "topk") else f"{c['n']:,}"
        if c["op"] == "attention":
            size = f"L={c['n']:,}, dim {c['dim']:,}"
        cells = []
        for b in cols:
            r = c["results"].get(b)
            if r is None:
                cells.append("")
            elif r["status"] != "ok":
                cells.append(_short_status(r["status"]))
            else:
                cells.append(f"{c['time_vs_reference'][b]:.3g}x")
        lines.append(f"| {c['op']} | {size} | {ref} | {fmt_time(c['results'][ref]['median_s'])} | "
                     + " | ".join(cells) + " |")
    return lines


def render_readme_section(res, image_prefix=""):
    """The README's performance section: command, machine, targets, speedups, accuracy, bytes."""
    out = ["## Performance", "",
           f"Measured with `{res.get('command') or 'hdc bench'}` ({res['mode']} mode, {res['started']}, "
           f"{res.get('duration_s', 0) / 60:.1f} min). Every ratio below divides two medians of the same "
           "run (implementations interleaved); `Nx` means hdc is N times faster. Rerun the command to "
           "reproduce any of them; `report.md` and `results.json` beside it hold every figure with its IQR.",
           "", *machine_lines(res), ""]
    md = render_markdown(res)
    if res.get("targets"):
        start = md.index("## Targets")
        end = md.index("## Time per call")
        out += ["### Targets" + md[start + len("## Targets"):end].rstrip(), ""]
    out += ["### hdc against the baselines (dim 10,000)", "", *speedup_table(res), ""]
    if "## Accuracy at equal task" in md:
        start = md.index("## Accuracy at equal task")
        end = md.index("## ", start + 5)
        out += ["### Accuracy at equal task" + md[start + len("## Accuracy at equal task"):end].rstrip(), ""]
    start = md.index("## Bytes per vector")
    end = md.index("## ", start + 5)
    out += ["### Bytes per vector" + md[start + len("## Bytes per vector"):end].rstrip(), ""]
    if res.get("plots"):
        out += ["### Plots", ""] + [f"![{p[:-4]}]({image_prefix}{p})" for p in res["plots"]] + [""]
    return "\n".join(out)
