#!/usr/bin/env python3
"""Turns scripts/bench.sh's results into docs/bench.md, the charts
docs/bench-plain.svg, docs/bench-seccomp.svg and docs/bench-scale.svg, and the
table between README's bench markers. Every number, ratio and met / not met is
computed here from the raw results: nothing is typed in by hand.

usage: bench_report.py RESULTS_DIR DOCS_DIR README
       bench_report.py --quick RESULTS_DIR      (prints the ratios; never fails)
"""
import glob
import json
import os
import re
import statistics
import sys

RUNTIMES = ("husk", "crun", "runc")
COLORS = {"husk": "#2a9d8f", "crun": "#e9c46a", "runc": "#e76f51"}
KIND_TITLES = {"plain": "plain bundle (no seccomp)", "seccomp": "with husk's default seccomp profile"}
MEMORY_COMMANDS = ("create", "start", "state", "list", "exec", "kill", "delete", "run")
README_BEGIN = "<!-- bench-table: written by scripts/bench_report.py -->"
README_END = "<!-- /bench-table -->"


def time_benchmarks(state_count):
    return [
        ("lifecycle", "(a) create + start + delete -f of `true`"),
        ("run", "(b) `run` of `true`"),
        ("exec", "(c) `exec true` into a running container"),
        ("state", f"(d) `state` with {state_count} containers present"),
        ("list", f"(d) `list` with {state_count} containers present"),
    ]


def samples(results, prefix):
    """All samples (seconds) of every round of PREFIX-rN.json, by command name,
    and each round's median by command name."""
    pooled, rounds = {}, []
    for path in sorted(glob.glob(os.path.join(results, prefix + "-r*.json"))):
        if not re.fullmatch(re.escape(prefix) + r"-r\d+\.json", os.path.basename(path)):
            continue
        medians = {}
        for r in json.load(open(path))["results"]:
            pooled.setdefault(r["command"], []).extend(r["times"])
            medians[r["command"]] = r["median"]
        rounds.append(medians)
    return pooled, rounds


def median_ms(times):
    return statistics.median(times) * 1000.0 if times else None


def fmt_ms(value):
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def ratio(a, b):
    return a / b if a is not None and b else None


class Results:
    def __init__(self, path):
        self.path = path
        self.settings = json.load(open(os.path.join(path, "settings.json")))

    def timing(self, prefix):
        """{runtime: median ms} over all rounds, and the spread of husk/crun over rounds."""
        pooled, rounds = samples(self.path, prefix)
        medians = {r: median_ms(t) for r, t in pooled.items()}
        per_round = [m["husk"] / m["crun"] for m in rounds if "husk" in m and "crun" in m]
        return medians, per_round

    def memory(self, kind):
        """{(runtime, command): median KiB} of memory.txt."""
        values = {}
        path = os.path.join(self.path, "memory.txt")
        if not os.path.exists(path):
            return {}
        for line in open(path):
            parts = line.split()
            if len(parts) == 4 and parts[0] == kind and parts[3].isdigit():
                values.setdefault((parts[1], parts[2]), []).append(int(parts[3]))
        return {k: statistics.median(v) for k, v in values.items()}

    def scale_counts(self):
        counts = set()
        for path in glob.glob(os.path.join(self.path, "scale-state-*-r*.json")):
            counts.add(int(os.path.basename(path).split("-")[2]))
        return sorted(counts)

    def cycles(self, runtime):
        path = os.path.join(self.path, f"cycles-{runtime}-blocks.txt")
        if not os.path.exists(path):
            return None
        blocks = []
        for line in open(path):
            n, t0, t1 = line.split()
            blocks.append((int(t1) - int(t0)) / 1e3 / int(n))  # microseconds -> ms per cycle
        read = lambda name: dict(l.split() for l in open(os.path.join(self.path, f"cycles-{runtime}-{name}.txt")))
        return blocks, read("before"), read("after"), int(n)

    def wrapper_cost_ms(self, name):
        path = os.path.join(self.path, name)
        if not os.path.exists(path):
            return None
        rows = {r["command"]: r["median"] for r in json.load(open(path))["results"]}
        return max(0.0, (rows["wrapped"] - rows["bare"]) * 1000.0)

    def share(self, manager, runtime, wrapper_ms):
        """Median over runs of: the runtime's time inside the run (union of its
        invocations, clipped to the run), the run's total less the wrapper's cost
        per invocation, their ratio; invocations per run; after the run."""
        path = os.path.join(self.path, f"share-{manager}-{runtime}.txt")
        if not os.path.exists(path):
            return None
        runs = []
        for line in open(path):
            parts = line.split()
            if parts[0] == "run":
                runs.append({"window": (int(parts[1]), int(parts[2])), "inv": []})
            elif parts[0] == "inv" and runs:
                runs[-1]["inv"].append((int(parts[1]), int(parts[2])))
        shares, inside, totals, counts, late = [], [], [], [], []
        for run in runs:
            t0, t1 = run["window"]
            spans = sorted((max(s, t0), min(e, t1)) for s, e in run["inv"] if s < t1 and e > t0)
            union, end = 0, t0
            for s, e in spans:
                s = max(s, end)
                if e > s:
                    union += e - s
                    end = e
            n = len(spans)
            total = (t1 - t0) / 1e6 - n * (wrapper_ms or 0.0)
            inside.append(union / 1e6)
            totals.append(total)
            counts.append(n)
            late.append(len(run["inv"]) - n)
            if total > 0:
                shares.append(union / 1e6 / total)
        if not shares:
            return None
        return {
            "share": statistics.median(shares),
            "runtime_ms": statistics.median(inside),
            "total_ms": statistics.median(totals),
            "invocations": statistics.median(counts),
            "late": max(late),
            "runs": len(runs),
        }


def growth(blocks):
    """The least-squares line through the blocks' times: its value at the last
    block over its value at the first (one noisy block moves it little)."""
    n = len(blocks)
    if n < 2:
        return 1.0
    mx, my = (n - 1) / 2, statistics.mean(blocks)
    slope = sum((i - mx) * (y - my) for i, y in enumerate(blocks)) / sum((i - mx) ** 2 for i in range(n))
    first, last = my - slope * mx, my + slope * mx
    return last / first if first > 0 else float("inf")


def time_rows(res, kind):
    rows = []
    for name, title in time_benchmarks(res.settings["state_count"]):
        medians, per_round = res.timing(f"time-{kind}-{name}")
        if medians:
            rows.append((name, title, medians, per_round))
    return rows


def quick(results):
    try:
        res = Results(results) if os.path.exists(os.path.join(results, "settings.json")) else None
        kinds = res.settings["kinds"] if res else ("plain", "seccomp")
        state_count = res.settings["state_count"] if res else "N"
        for kind in kinds:
            print(f"bench-quick: {KIND_TITLES.get(kind, kind)}, median, husk / crun:")
            for name, title in time_benchmarks(state_count):
                pooled, _ = samples(results, f"time-{kind}-{name}")
                husk, crun = median_ms(pooled.get("husk")), median_ms(pooled.get("crun"))
                print(f"  {title:50} {fmt_ratio(ratio(husk, crun)):>5}  (husk {fmt_ms(husk)}, crun {fmt_ms(crun)})")
    except Exception as e:  # CI prints what it can and never fails here
        print(f"bench-quick: no ratios: {e}")


def status(value, ok):
    if value is None:
        return "not measured"
    return "met" if ok(value) else "**not met**"


def targets(res):
    """Issue #18's targets, each with the measured value and met / not met."""
    out = []
    plain = {name: m for name, _, m, _ in time_rows(res, "plain")}
    for name, label, limit in (("lifecycle", "(a) create + start + delete -f", 0.6), ("run", "(b) run", 0.6),
                               ("exec", "(c) exec", 0.6), ("state", "(d) state", 0.5), ("list", "(d) list", 0.5)):
        m = plain.get(name, {})
        r = ratio(m.get("husk"), m.get("crun"))
        out.append((f"1. {label}, plain bundle: husk / crun <= {limit}", fmt_ratio(r), status(r, lambda v: v <= limit)))
    mem = res.memory("plain")
    if mem:
        over = [c for c in MEMORY_COMMANDS if (("husk", c) in mem and ("crun", c) in mem
                                              and mem[("husk", c)] > mem[("crun", c)])]
        measured = [c for c in MEMORY_COMMANDS if ("husk", c) in mem and ("crun", c) in mem]
        value = "above crun: " + (", ".join(over) if over else "none") + f" (of {len(measured)})"
        out.append(("1. peak RSS of every command <= crun's (plain)", value, "met" if not over else "**not met**"))
        h, c = mem.get(("husk", "init-vmhwm")), mem.get(("crun", "init-vmhwm"))
        out.append(("1. init's VmHWM after create <= crun's (plain)",
                    f"{h / 1024:.2f} vs {c / 1024:.2f} MiB" if h and c else "-",
                    status(ratio(h, c), lambda v: v <= 1.0)))
    counts = res.scale_counts()
    if counts:
        first, last = counts[0], counts[-1]
        state = {n: res.timing(f"scale-state-{n}")[0].get("husk") for n in counts}
        r = ratio(state[last], state[first])
        base = ratio(res.timing(f"scale-state-{last}")[0].get("baseline"), res.timing(f"scale-state-{first}")[0].get("baseline"))
        value = fmt_ratio(r) + ("" if base is None else f" (`/bin/true`, the control: {base:.2f})")
        out.append((f"2. state with {last} containers <= 1.2 x with {first}", value, status(r, lambda v: v <= 1.2)))
        steps = list_steps(res, "husk", counts)
        worst = max((s for _, s in steps), default=None)
        out.append(("2. list: at most linear, < 0.1 ms per container (each step between counts)",
                    "-" if worst is None else f"worst step {worst:.3f} ms/container",
                    status(worst, lambda v: v < 0.1)))
    par = res.timing("parallel")[0]
    r = ratio(par.get("crun"), par.get("husk"))
    out.append((f"2. {res.settings['parallel']} containers created + started in parallel: crun / husk >= 2",
                fmt_ratio(r), status(r, lambda v: v >= 2.0)))
    cyc = res.cycles("husk")
    if cyc:
        blocks, before, after, n = cyc
        g = growth(blocks)
        leaks = {k: int(after[k]) - int(before[k]) for k in before if int(after[k]) != int(before[k])}
        value = f"growth {g:.2f}; leaked: " + (", ".join(f"{k} {v:+d}" for k, v in leaks.items()) or "nothing")
        out.append((f"2. {len(blocks) * n} create+start+delete: no growth (fitted last / first block <= 1.2), "
                    "nothing leaked", value, "met" if g <= 1.2 and not leaks else "**not met**"))
    mgr = [m for m in ("podman", "ctr", "docker") if res.timing(f"manager-{m}")[0]]
    out.append(("3. podman, ctr and docker with husk and runc, runtime's share", ", ".join(mgr) or "-",
                "reported" if len(mgr) == 3 else "not measured" if not mgr else "partly measured"))
    return out


def list_steps(res, runtime, counts):
    """(count, ms per added container between the previous count and this one)."""
    lst = {n: res.timing(f"scale-list-{n}")[0].get(runtime) for n in counts}
    steps = []
    for a, b in zip(counts, counts[1:]):
        if lst[a] is not None and lst[b] is not None:
            steps.append((b, (lst[b] - lst[a]) / (b - a)))
    return steps


def md_time_table(res, kind):
    present = [r for r in RUNTIMES if r in res.settings["runtimes"]]
    lines = ["| test | " + " | ".join(present) + " | husk / crun | husk / crun per round | runc / crun |",
             "|---|" + "---|" * (len(present) + 3)]
    for _, title, m, per_round in time_rows(res, kind):
        spread = " ".join(f"{v:.2f}" for v in per_round) or "-"
        lines.append(f"| {title} | " + " | ".join(fmt_ms(m.get(r)) for r in present) +
                     f" | {fmt_ratio(ratio(m.get('husk'), m.get('crun')))} | {spread} | "
                     f"{fmt_ratio(ratio(m.get('runc'), m.get('crun')))} |")
    return lines


def md_memory_table(res, kind):
    mem = res.memory(kind)
    if not mem:
        return []
    present = [r for r in RUNTIMES if any(k[0] == r for k in mem)]
    lines = [f"Peak RSS ({KIND_TITLES[kind]}), median of {res.settings['mem_runs']}:", "",
             "| command | " + " | ".join(present) + " | husk / crun |", "|---|" + "---|" * (len(present) + 1)]
    for c in MEMORY_COMMANDS + ("init-vmhwm",):
        label = "init's VmHWM after create" if c == "init-vmhwm" else f"`{c}`"
        vals = [mem.get((r, c)) for r in present]
        lines.append(f"| {label} | " + " | ".join("-" if v is None else f"{v / 1024:.2f} MiB" for v in vals) +
                     f" | {fmt_ratio(ratio(mem.get(('husk', c)), mem.get(('crun', c))))} |")
    return lines


def headline(res):
    """The issue's table: both bundle kinds side by side, and peak RSS."""
    kinds = res.settings["kinds"]
    lines = ["| test | " + " | ".join(KIND_TITLES.get(k, k) + ": husk / crun" for k in kinds) + " |",
             "|---|" + "---|" * len(kinds)]
    rows = {k: {name: (title, m) for name, title, m, _ in time_rows(res, k)} for k in kinds}
    for name, title in time_benchmarks(res.settings["state_count"]):
        cells = []
        for k in kinds:
            m = rows[k].get(name, (None, {}))[1]
            r = ratio(m.get("husk"), m.get("crun"))
            cells.append("-" if r is None else f"{r:.2f} (husk {fmt_ms(m['husk'])}, crun {fmt_ms(m['crun'])})")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for label, c in (("peak RSS of `create`", "create"), ("init's VmHWM after create", "init-vmhwm")):
        cells = []
        for k in kinds:
            mem = res.memory(k)
            h, cr = mem.get(("husk", c)), mem.get(("crun", c))
            cells.append(f"{h / 1024:.1f} MiB vs crun {cr / 1024:.1f} ({h / cr:.2f}x)" if h and cr else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def md_scale(res):
    counts = res.scale_counts()
    if not counts:
        return []
    present = [r for r in RUNTIMES if any(res.timing(f"scale-state-{n}")[0].get(r) for n in counts)]
    control = any(res.timing(f"scale-state-{n}")[0].get("baseline") for n in counts)
    columns = present + (["baseline"] if control else [])
    lines = ["| containers | " + " | ".join(f"{r} `state` (x {counts[0]})" if r != "baseline" else
                                            f"control: `/bin/true` (x {counts[0]})" for r in columns) + " | " +
             " | ".join(f"{r} `list` (ms / container)" for r in present) + " |",
             "|---|" + "---|" * (len(columns) + len(present))]
    for n in counts:
        state = res.timing(f"scale-state-{n}")[0]
        lst = res.timing(f"scale-list-{n}")[0]
        cells = []
        for r in columns:
            base = res.timing(f"scale-state-{counts[0]}")[0].get(r)
            cells.append(f"{fmt_ms(state.get(r))} ({fmt_ratio(ratio(state.get(r), base))})")
        for r in present:
            cells.append(f"{fmt_ms(lst.get(r))} ({lst[r] / n:.3f})" if lst.get(r) else "-")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    steps = {r: list_steps(res, r, counts) for r in present}
    if control:
        lines += ["", "The control, `/bin/true` timed with `state` at each count, shows what the containers' "
                      "processes and cgroups alone do to starting a process on this host."]
    lines += ["", "`list`, the cost of each added container between two counts: " +
              "; ".join(f"{r}: " + ", ".join(f"to {n}: {s:.3f} ms" for n, s in steps[r]) for r in present) + "."]
    return lines


def md_parallel(res):
    m, per_round = res.timing("parallel")
    if not m:
        return []
    present = [r for r in RUNTIMES if r in m]
    return ["| runtime | median | / crun |", "|---|---|---|"] + [
        f"| {r} | {fmt_ms(m[r])} | {fmt_ratio(ratio(m[r], m.get('crun')))} |" for r in present] + [
        "", f"crun / husk: {fmt_ratio(ratio(m.get('crun'), m.get('husk')))} "
            f"(per round husk / crun: {' '.join(f'{v:.2f}' for v in per_round)})."]


def md_cycles(res):
    lines, verdict = [], {}
    for r in RUNTIMES:
        cyc = res.cycles(r)
        if not cyc:
            continue
        blocks, before, after, n = cyc
        if not lines:
            lines = ["| runtime | ms per cycle, each block of cycles | growth (fitted) | last / first block | "
                     "resources before -> after |", "|---|---|---|---|---|"]
        leaks = {k: int(after[k]) - int(before[k]) for k in before}
        res_cell = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before)
        g = growth(blocks)
        lines.append(f"| {r} | {' '.join(f'{b:.1f}' for b in blocks)} | {g:.2f} | {blocks[-1] / blocks[0]:.2f} | {res_cell} |")
        leaked = [f"{k} {v:+d}" for k, v in leaks.items() if v]
        verdict[r] = (f"{r}, {len(blocks) * n} cycles in blocks of {n}: " +
                      ("**no growth, nothing leaked**" if g <= 1.2 and not leaked else "**growth or leak**") +
                      f" (growth {g:.2f}; leaked: {', '.join(leaked) or 'nothing'}).")
    if lines:
        lines += [""] + [f"- {v}" for v in verdict.values()] + [
            "", "Growth: the least-squares line through the blocks' times, its value at the last block over "
                "its value at the first; no growth is at most 1.2."]
    return lines


def md_managers(res):
    wrapper = res.wrapper_cost_ms("share-wrapper.json")
    lines = ["| manager | husk | runc | husk / runc | husk per round | runtime's share: husk | runc | invocations a run (husk, runc) |",
             "|---|---|---|---|---|---|---|---|"]
    titles = {"podman": "`podman run --rm --network none`", "ctr": "`ctr run --rm` (runc v2 shim)",
              "docker": "`docker run --rm --network none`"}
    any_row = False
    for m in ("podman", "ctr", "docker"):
        med, _ = res.timing(f"manager-{m}")
        if not med:
            continue
        any_row = True
        _, rounds = samples(res.path, f"manager-{m}")
        per_round = " ".join(f"{x['husk'] / x['runc']:.2f}" for x in rounds if "husk" in x and "runc" in x)
        sh = {r: res.share(m, r, wrapper) for r in ("husk", "runc")}
        cell = lambda s: "-" if not s else f"{s['share'] * 100:.0f}% ({fmt_ms(s['runtime_ms'])} of {fmt_ms(s['total_ms'])})"
        inv = ", ".join("-" if not sh[r] else f"{sh[r]['invocations']:g}" for r in ("husk", "runc"))
        lines.append(f"| {titles[m]} | {fmt_ms(med.get('husk'))} | {fmt_ms(med.get('runc'))} | "
                     f"{fmt_ratio(ratio(med.get('husk'), med.get('runc')))} | {per_round} | {cell(sh['husk'])} | "
                     f"{cell(sh['runc'])} | {inv} |")
        late = max((s["late"] for s in sh.values() if s), default=0)
        if late:
            lines.append(f"| | {titles[m]}: up to {late} invocation(s) a run came after the manager returned (not counted) | | | | | | |")
    if not any_row:
        return []
    if wrapper is not None:
        lines += ["", f"The wrapper's own cost, taken off each run's total once per invocation: {wrapper:.2f} ms "
                      "(hyperfine: the wrapper running /bin/true against /bin/true)."]
    return lines


def svg_ratios(res, kind):
    rows = time_rows(res, kind)
    width, left, top, bar, cap = 780, 260, 40, 18, 3.0
    height = top + 20 + 60 * len(rows)
    scale = (width - left - 110) / cap
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14">Median time relative to crun, {KIND_TITLES.get(kind, kind)}: shorter is faster</text>']
    x1 = left + scale
    out.append(f'<line x1="{x1:.0f}" y1="{top}" x2="{x1:.0f}" y2="{height - 10}" stroke="#999" stroke-dasharray="4"/>')
    out.append(f'<text x="{x1 - 12:.0f}" y="{height - 2}" fill="#666">crun</text>')
    for i, (_, title, m, _) in enumerate(rows):
        y = top + 10 + i * 60
        out.append(f'<text x="10" y="{y + 23}">{title.split(" ", 1)[1].replace("`", "")[:38]}</text>')
        for j, runtime in enumerate(r for r in ("husk", "runc") if r in m):
            rt = ratio(m.get(runtime), m.get("crun"))
            if rt is None:
                continue
            by = y + j * (bar + 4)
            w = min(rt, cap) * scale
            label = f"{runtime} {rt:.2f}" + (" (off the scale)" if rt > cap else "")
            out.append(f'<rect x="{left}" y="{by}" width="{w:.0f}" height="{bar}" fill="{COLORS[runtime]}"/>')
            out.append(f'<text x="{left + w + 4:.0f}" y="{by + 13}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out)


def svg_scale(res):
    """`state` and `list` against the containers present, on a linear axis (a
    straight line is linear growth)."""
    counts = res.scale_counts()
    panels = (("state", "state of one container (ms)"), ("list", "list (ms)"))
    width, height, pw, ph, left, top = 840, 330, 320, 230, 60, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           '<text x="10" y="20" font-size="14">Median time against the number of containers present</text>']
    xmax = max(counts[-1], 1)
    for p, (what, title) in enumerate(panels):
        ox = left + p * (pw + 100)
        series = {}
        for r in RUNTIMES:
            pts = [(n, res.timing(f"scale-{what}-{n}")[0].get(r)) for n in counts]
            pts = [(n, v) for n, v in pts if v is not None]
            if pts:
                series[r] = pts
        ymax = max((v for pts in series.values() for _, v in pts), default=1) * 1.1
        px = lambda n: ox + n / xmax * pw
        py = lambda v: top + ph - v / ymax * ph
        out.append(f'<text x="{ox}" y="{top - 10}">{title}</text>')
        out.append(f'<rect x="{ox}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        last_label = None
        for n in [0] + counts:
            if last_label is None or px(n) - last_label >= 30:
                out.append(f'<text x="{px(n) - 8:.0f}" y="{top + ph + 15}">{n}</text>')
                last_label = px(n)
        for k in range(5):
            v = ymax * k / 4
            out.append(f'<text x="{ox - 45}" y="{py(v) + 4:.0f}">{v:.1f}</text>')
        out.append(f'<text x="{ox + pw / 2 - 30:.0f}" y="{top + ph + 32}">containers</text>')
        for j, (r, pts) in enumerate(series.items()):
            path = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{COLORS[r]}" stroke-width="2"/>')
            out += [f'<circle cx="{px(n):.1f}" cy="{py(v):.1f}" r="3" fill="{COLORS[r]}"/>' for n, v in pts]
            out.append(f'<text x="{ox + 10}" y="{top + 15 + 15 * j}" fill="{COLORS[r]}">{r}</text>')
    out.append("</svg>")
    return "\n".join(out)


def report(res):
    s = res.settings
    ns = res.wrapper_cost_ms("namespace-wrapper.json")
    md = ["# Benchmarks", ""]
    if s.get("smoke"):
        md += [f"> **Not results: {s['smoke']}**", ""]
    md += ["Made by `make bench` (scripts/bench.sh, scripts/bench-managers.sh, scripts/bench_report.py): "
           "husk against Debian's crun and runc for issue #18. Every number, ratio and met / not met "
           "below is computed from this run's raw results.", "",
           f"Machine: {s['machine']}. " + "; ".join(f"{r}: {v}" for r, v in s["versions"].items()) +
           f". Binary sizes: " + ", ".join(f"{r} {v / 1048576:.1f} MiB" for r, v in s["sizes"].items()) +
           (f". The run took {s['duration_s'] / 60:.0f} minutes." if s.get("duration_s") else "."), "",
           "## Method", "",
           f"- hyperfine 1.15 (`-N`: no shell), {s['rounds']} rounds of {s['runs']} runs (after "
           f"{s['warmup']} warm-up runs) of each command, the order of the runtimes rotated each round "
           "(husk crun runc, then crun runc husk, ...); a median is that of all rounds' samples together, "
           "and the husk / crun of each round is shown next to it, for the spread.",
           "- All three runtimes get the same config.json: `husk spec`'s, ociVersion 1.0.2-dev (crun 1.8 "
           "refuses 1.2.0), a static busybox rootfs, no terminal. The plain bundle drops `linux.seccomp`; "
           "the seccomp bundle keeps husk's default profile.",
           "- crun 1.8 refuses hybrid cgroup hosts, so the whole run happens in one private mount namespace "
           "in which the cgroup2 mount at /sys/fs/cgroup/unified is unmounted: all three runtimes see the "
           "same cgroup v1 host. /tmp and /run are fresh tmpfs in that namespace, so that what a runtime "
           "leaves there is counted and goes with the run.",
           "- Issue #18's own figures ran each command in its own namespace (a wrapper of `unshare -m` and "
           "a umount), whose time was part of every figure" +
           (f": that wrapper costs {ns:.1f} ms here (hyperfine of it around `true`, against `true`). "
            if ns is not None else ". ") +
           "These figures do not include it: the namespace is made once for the whole run, so the ratios "
           "here are further from 1 than the issue's for the same work.",
           "- (a) runs a /bin/sh script of create, start and delete -f (one shell start in every runtime's "
           "figure); (b) is one `run` a sample; (c) `exec true` into a container running `sleep`; (d) "
           f"`state` of that container and `list` (the table) with {s['state_count']} containers present.",
           f"- Memory: the peak RSS (`/usr/bin/time -f %M`, wait4's ru_maxrss) of each command, median of "
           f"{s['mem_runs']}; the init's VmHWM is read from /proc/PID/status of the init waiting after "
           "`create`.",
           f"- Scale: `state` and `list` with 1 to {max(res.scale_counts() or [0])} containers created "
           f"(waiting) in one root, {s['scale_runs']} runs a round; {s['parallel']} containers "
           f"created and started at once (a bash script, one background create && start each), "
           f"{s['parallel_runs']} runs a round, the containers removed before each run (not timed); "
           f"{s['cycles']} sequential create + start + delete -f, timed by blocks, with what a leak would "
           "leave counted before and after: the benchmark shell's fds, entries under the state root, "
           "cgroups named after the containers, mounts, processes in those cgroups or naming the root, "
           "files in /tmp and /run.",
           f"- Managers: the time of one manager run, {s['rounds']} rounds of {s['manager_runs']} (husk and "
           "runc swapped each round); then "
           f"{s['share_runs']} more runs in which the manager runs the runtime through a static wrapper "
           "that notes the time before it forks the runtime and after it has reaped it. The runtime's share "
           "is the union of those intervals inside the run, over the run's time less the wrapper's own "
           "cost once per invocation; the median over the runs. The runtime's intervals include the hooks "
           "it runs: docker adds a prestart hook, dockerd's own binary (libnetwork-setkey), even with "
           "`--network none`, which is why its `create` takes far longer than podman's. crun cannot "
           "run under the managers on this hybrid host: husk against runc only.",
           "",
           "## Issue #18's targets", "", "| target | measured | |", "|---|---|---|"]
    md += [f"| {t} | {v} | {st} |" for t, v, st in targets(res)]
    md += ["", "## Headline", ""] + headline(res)
    for kind in s["kinds"]:
        md += ["", f"## Time, {KIND_TITLES.get(kind, kind)}", ""] + md_time_table(res, kind)
        md += ["", f"![median time relative to crun, {kind}](bench-{kind}.svg)"]
    md += ["", "## Memory", ""]
    for kind in s["kinds"]:
        md += md_memory_table(res, kind) + [""]
    scale = md_scale(res)
    if scale:
        md += ["## Scale: `state` and `list`", ""] + scale + ["", "![state and list against containers present](bench-scale.svg)", ""]
    par = md_parallel(res)
    if par:
        md += [f"## {s['parallel']} containers created and started in parallel", ""] + par + [""]
    cyc = md_cycles(res)
    if cyc:
        md += [f"## {s['cycles']} sequential create + start + delete", ""] + cyc + [""]
    mgr = md_managers(res)
    if mgr:
        md += ["## Under the managers", ""] + mgr + [""]
    md += ["## Running it", "",
           "`make bench` (as root; installs hyperfine, time, crun and runc with `make deps-bench`, and the "
           "managers' packages for their part). Smaller runs, through the environment: `RUNS`, `ROUNDS`, "
           "`WARMUP`, `KINDS`, `STATE_COUNT`, `MEM_RUNS`, `SCALE` (e.g. 1,10,100), `SCALE_RUNS`, "
           "`SCALE_RUNTIMES`, `PARALLEL`, `PARALLEL_RUNS`, `PARALLEL_RUNTIMES`, `CYCLES`, `CYCLE_RUNTIMES`, "
           "`MANAGERS=0`, `MANAGER_RUNS`, `SHARE_RUNS`, `BENCH_PHASES` (time,memory,scale,parallel,cycles,managers), "
           "`BENCH_DOCS` (where this report goes), `BENCH_README` (whose table to rewrite), `BENCH_KEEP` (a directory "
           "for the raw results; `scripts/bench_report.py KEEP DOCS README` makes the report again from them); "
           "none of them under /tmp or /run, which the benchmark's namespace replaces. "
           "`make bench-quick` prints the ratios of (a) to (d) for both bundle kinds and never fails.", ""]
    return md


def update_readme(path, res):
    text = open(path).read()
    if README_BEGIN not in text or README_END not in text:
        print(f"bench_report: {path} has no {README_BEGIN} ... {README_END}: not updated", file=sys.stderr)
        return
    s = res.settings
    smoke = f"**Not results: {s['smoke']}** " if s.get("smoke") else ""
    block = [README_BEGIN,
             f"{smoke}Medians of the last `make bench`, ratios to crun, on {s['machine']}, with "
             + ", ".join(s["versions"].values()) + ":", ""] + headline(res) + ["", README_END]
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    open(path, "w").write(text[:start] + "\n".join(block) + text[end:])


def main():
    if sys.argv[1] == "--quick":
        quick(sys.argv[2])
        return
    results, docs, readme = sys.argv[1:4]
    res = Results(results)
    os.makedirs(docs, exist_ok=True)
    md = report(res)
    open(os.path.join(docs, "bench.md"), "w").write("\n".join(md))
    for kind in res.settings["kinds"]:
        open(os.path.join(docs, f"bench-{kind}.svg"), "w").write(svg_ratios(res, kind))
    if res.scale_counts():
        open(os.path.join(docs, "bench-scale.svg"), "w").write(svg_scale(res))
    if os.path.exists(readme):
        update_readme(readme, res)
    print("\n".join(md))


if __name__ == "__main__":
    main()
