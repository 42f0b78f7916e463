#!/usr/bin/env python3
"""Turns scripts/bench.sh's hyperfine results into docs/bench.md and docs/bench.svg.

usage: bench_report.py RESULTS_DIR DOCS_DIR MACHINE VERSIONS
       bench_report.py --quick RESULTS_DIR
"""
import json
import os
import sys

BENCHMARKS = [
    ("lifecycle", "(a) create + start + delete -f of `true`"),
    ("run100", "(b) 100 sequential `run` of `true`"),
    ("exec", "(c) `exec true` into a running container"),
    ("state", "(d) `state` with 100 containers present"),
    ("list", "(d) `list` with 100 containers present"),
    ("parallel20", "(e) 20 containers created and deleted in parallel"),
]
COLORS = {"husk": "#2a9d8f", "crun": "#e9c46a", "runc": "#e76f51"}


def load(results, name):
    path = os.path.join(results, name + ".json")
    if not os.path.exists(path):
        return {}
    data = json.load(open(path))
    return {r["command"]: r for r in data["results"]}


def ms(seconds):
    return seconds * 1000.0


def quick(results):
    rows = load(results, "lifecycle")
    husk, crun = rows.get("husk"), rows.get("crun")
    if not husk or not crun:
        print("bench-quick: crun missing, no ratio")
        return
    ratio = husk["median"] / crun["median"]
    print(f"bench-quick: create+start+delete median husk {ms(husk['median']):.1f} ms, "
          f"crun {ms(crun['median']):.1f} ms, husk/crun = {ratio:.2f} (target <= 0.70)")


def table(results):
    lines = ["| benchmark | runtime | median | min | max | / crun |", "|---|---|---|---|---|---|"]
    ratios = []
    for name, title in BENCHMARKS:
        rows = load(results, name)
        crun = rows.get("crun")
        for runtime in ("husk", "crun", "runc"):
            r = rows.get(runtime)
            if not r:
                continue
            ratio = r["median"] / crun["median"] if crun else float("nan")
            lines.append(f"| {title} | {runtime} | {ms(r['median']):.1f} ms | {ms(r['min']):.1f} ms | "
                         f"{ms(r['max']):.1f} ms | {ratio:.2f} |")
            ratios.append((name, runtime, ratio))
    return lines, ratios


def svg(ratios):
    names = [n for n, _ in BENCHMARKS if any(r[0] == n for r in ratios)]
    width, height, left, top, bar = 760, 60 + 70 * len(names), 230, 40, 18
    scale = (width - left - 40) / max(2.0, max((r[2] for r in ratios if r[2] == r[2]), default=1))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           '<text x="10" y="20" font-size="14">Median time relative to crun (shorter is faster)</text>']
    x1 = left + scale
    out.append(f'<line x1="{x1:.0f}" y1="{top}" x2="{x1:.0f}" y2="{height - 10}" stroke="#999" stroke-dasharray="4"/>')
    titles = dict(BENCHMARKS)
    for i, name in enumerate(names):
        y = top + 10 + i * 70
        out.append(f'<text x="10" y="{y + 25}">{titles[name].split(" ", 1)[1].replace("`", "")[:34]}</text>')
        for j, runtime in enumerate(("husk", "crun", "runc")):
            ratio = next((r[2] for r in ratios if r[0] == name and r[1] == runtime), None)
            if ratio is None or ratio != ratio:
                continue
            by = y + j * (bar + 2)
            out.append(f'<rect x="{left}" y="{by}" width="{ratio * scale:.0f}" height="{bar}" fill="{COLORS[runtime]}"/>')
            out.append(f'<text x="{left + ratio * scale + 4:.0f}" y="{by + 13}">{runtime} {ratio:.2f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    if sys.argv[1] == "--quick":
        quick(sys.argv[2])
        return
    results, docs, machine, versions = sys.argv[1:5]
    lines, ratios = table(results)
    rss = [l.split() for l in open(os.path.join(results, "rss.txt")).read().splitlines() if l.strip()]
    os.makedirs(docs, exist_ok=True)
    md = ["# Benchmarks", "",
          "Made by `make bench` (scripts/bench.sh): husk, crun and runc on one busybox bundle in one run,",
          "with hyperfine. crun 1.8 refuses hybrid cgroup hosts, so all three run in a private mount namespace",
          "in which the cgroup2 mount at /sys/fs/cgroup/unified is unmounted (a cgroup v1 host to all three).", "",
          f"Machine: {machine}.", "", "Versions:", ""]
    md += [f"- {v}" for v in versions.splitlines()]
    md += ["", *lines, "", "| runtime | peak RSS of `create` | binary size |", "|---|---|---|"]
    md += [f"| {r} | {int(kb) / 1024:.1f} MiB | {int(size) / 1048576:.1f} MiB |" for r, kb, size in rss]
    md += ["", "![median time relative to crun](bench.svg)", ""]
    open(os.path.join(docs, "bench.md"), "w").write("\n".join(md))
    open(os.path.join(docs, "bench.svg"), "w").write(svg(ratios))
    print("\n".join(md))


if __name__ == "__main__":
    main()
