#!/usr/bin/env python3
"""Merges the repeats of issue 17's side-by-side runs (rN/results.json, one interleaved repeat
each, every proxy beside its own direct run) into runs.jsonl and summary.md: per workload and
proxy, the proxy's CPU per unit, the whole machine's CPU per unit added over the direct run of the
same repeat, and the ratios of that added CPU to HAProxy's and to io_uring ringproxy's (computed
per repeat, then median and range). Latency: p50/p99 added over direct.
Usage: python3 summarize.py [DIR]   (DIR: another folder of rN/ runs, e.g. unpinned/)"""
import glob, json, os, statistics, sys

HERE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
PROXIES = ["ringproxy", "haproxy", "haproxy-splice", "nginx", "sockmap", "sockmap-strp"]
WORK = [("pingpong", "round trip", 3), ("bulk-1", "MB", 0), ("bulk-100", "MB", 0), ("conn", "session", 1)]


def med(v):
    return (statistics.median(v), min(v), max(v)) if v else None


def f(t, d):
    if t is None:
        return "–"
    m, lo, hi = t
    s = lambda x: f"{x:,.{d}f}"
    return f"{s(m)} ({s(lo)}–{s(hi)})" if len(set([s(lo), s(hi)])) > 1 else s(m)


def main():
    runs = []
    for path in sorted(glob.glob(os.path.join(HERE, "r*", "results.json"))):
        rep = os.path.basename(os.path.dirname(path))
        for r in json.load(open(path))["runs"]:
            runs.append(dict(r, run=rep))
    with open(os.path.join(HERE, "runs.jsonl"), "w") as out:
        for r in runs:
            out.write(json.dumps(r) + "\n")
    by = {}
    for r in runs:
        if r.get("result"):
            by[(r["run"], r["workload"], r["proxy"])] = r["result"]
    reps = sorted({r["run"] for r in runs})
    md = [f"Repeats: {len(reps)} ({', '.join(reps)}); each an interleaved run of every proxy with its own direct run. "
          "Values: median (min–max) over repeats. \"added\" = whole-machine CPU per unit (/proc/stat, both CPUs, "
          "softirq and kworkers included) minus the direct run's of the same repeat. Ratios are computed per "
          "repeat, then median (min–max).", ""]
    for w, unit, d in WORK:
        md += [f"## {w}", "",
               f"| proxy | rate/s | proxy CPU-µs/{unit} | machine CPU-µs/{unit} | added over direct | added ÷ haproxy | added ÷ ringproxy |",
               "|---|---|---|---|---|---|---|"]
        direct = {rep: by.get((rep, w, "direct"), {}).get("machine_per_unit") for rep in reps}
        md.append(f"| direct | {f(med([by[(rep, w, 'direct')]['rate'] for rep in reps if (rep, w, 'direct') in by]), 0)} | – | "
                  f"{f(med([v for v in direct.values() if v]), d)} | – | – | – |")
        for p in PROXIES:
            rows = [(rep, by[(rep, w, p)]) for rep in reps if (rep, w, p) in by]
            if not rows:
                continue
            added = {rep: r["machine_per_unit"] - direct[rep] for rep, r in rows if direct.get(rep) and r.get("machine_per_unit")}
            def rel(ref):
                v = []
                for rep, a in added.items():
                    rr = by.get((rep, w, ref))
                    if rr and direct.get(rep) and rr.get("machine_per_unit"):
                        base = rr["machine_per_unit"] - direct[rep]
                        if base > 0:
                            v.append(a / base)
                return med(v)
            md.append(f"| {p} | {f(med([r['rate'] for _, r in rows]), 0)} | "
                      f"{f(med([r['per_unit'] for _, r in rows if r.get('per_unit') is not None]), d if d else 1)} | "
                      f"{f(med([r['machine_per_unit'] for _, r in rows if r.get('machine_per_unit')]), d)} | "
                      f"{f(med(list(added.values())), d)} | {f(rel('haproxy'), 2)} | {f(rel('ringproxy'), 2)} |")
        md.append("")
    md += ["## latency (1 connection, 1 PUBLISH of 64 B in flight)", "",
           "| proxy | round trips/s | p50 µs | p99 µs | added p50 µs | added p99 µs |", "|---|---|---|---|---|---|"]
    for p in ["direct"] + PROXIES:
        rows = [(rep, by[(rep, "latency", p)]) for rep in reps if (rep, "latency", p) in by]
        if not rows:
            continue
        a50, a99 = [], []
        for rep, r in rows:
            dr = by.get((rep, "latency", "direct"))
            if dr and p != "direct":
                a50.append(r["p50"] - dr["p50"])
                a99.append(r["p99"] - dr["p99"])
        md.append(f"| {p} | {f(med([r['rate'] for _, r in rows]), 0)} | {f(med([r['p50'] for _, r in rows]), 0)} | "
                  f"{f(med([r['p99'] for _, r in rows]), 0)} | {f(med(a50), 0)} | {f(med(a99), 0)} |")
    errors = [r for r in runs if r.get("error")]
    if errors:
        md += ["", "Failed runs: " + "; ".join(f"{r['run']} {r['workload']} {r['proxy']}: {r['error'][:120]}" for r in errors)]
    text = "\n".join(md) + "\n"
    with open(os.path.join(HERE, "summary.md"), "w") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
