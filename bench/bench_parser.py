"""JUnit parser benchmark (not a test): prints a table; figures go to docs/PERFORMANCE.md.

    .venv/bin/python bench/bench_parser.py [--cases 200000] [--big-gb 1.0] [--skip-big]

Generates a ~100 MB Surefire-style report (200,000 testcases, 5% failures with 64-frame stack
traces, 10% with system-out) in a temp dir, then runs each variant in its own subprocess (so peak
RSS is per variant, read from the child's own getrusage):

* bare lxml: iterparse over the file, tag="testcase", end events, count + clear — the floor;
* ours: flakeguard.junit.parse_report, building every TestExecution (all attributes, results,
  outputs, keys, ordinals);
* junitparser: JUnitXml.fromfile, iterating every case and reading name/classname/time/result.

Then peak RSS of `parse_report` over a ~1 GB report generated straight to disk (deleted after).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lxml.etree
from _common import machine

VARIANTS = {
    "bare": """
from lxml import etree
n = 0
for _, el in etree.iterparse(PATH, events=("end",), tag="testcase"):
    n += 1
    el.clear(keep_tail=False)
    while el.getprevious() is not None:
        del el.getparent()[0]
""",
    "ours": """
from flakeguard.junit import parse_report
n = 0
with open(PATH, "rb") as f:
    for e in parse_report(f, source=PATH):
        n += 1
""",
    "junitparser": """
from junitparser import JUnitXml
n = 0
xml = JUnitXml.fromfile(PATH)
for suite in xml:
    for case in suite:
        n += 1
        (case.name, case.classname, case.time, case.result, case.system_out)
""",
}

RUNNER = """
import json, resource, sys, time
PATH = sys.argv[1]
t0 = time.perf_counter()
{body}
elapsed = time.perf_counter() - t0
print(json.dumps({{"n": n, "s": elapsed, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


def run_variant(name: str, path: Path) -> dict[str, float]:
    code = RUNNER.format(body=VARIANTS[name])
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def baseline_rss_kb() -> float:
    code = (
        "import resource, flakeguard.junit, lxml.etree;"
        " print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    return float(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200_000)
    parser.add_argument("--big-gb", type=float, default=1.0)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the best is kept")
    args = parser.parse_args()

    from flakeguard.testing.reports import write_large_report

    lxml_versions = (
        f"lxml {'.'.join(map(str, lxml.etree.LXML_VERSION[:3]))} / libxml2 "
        f"{'.'.join(map(str, lxml.etree.LIBXML_VERSION))}"
    )
    print(f"machine: {machine(lxml_versions)}")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        with report.open("wb") as f:
            size = write_large_report(f, args.cases)
        print(f"report: {args.cases} testcases, {size / 1e6:.1f} MB")
        results: dict[str, dict[str, float]] = {}
        for _ in range(args.repeat):  # interleaved, so load from other processes hits all alike
            for name in VARIANTS:
                r = run_variant(name, report)
                assert r["n"] == args.cases, (name, r)
                best = results.get(name)
                if best is None or r["s"] < best["s"]:
                    results[name] = {**r, "peak_kb": max(r["peak_kb"], best["peak_kb"] if best else 0)}
        base = results["bare"]["n"] / results["bare"]["s"]
        jp = results["junitparser"]["n"] / results["junitparser"]["s"]
        print()
        print(
            f"{'variant':<12} {'testcases/s':>12} {'vs bare':>8} {'vs junitparser':>15} {'peak RSS MB':>12}"
        )
        for name, r in results.items():
            rate = r["n"] / r["s"]
            peak_mb = r["peak_kb"] / 1024
            print(f"{name:<12} {rate:>12,.0f} {rate / base:>8.2f} {rate / jp:>15.2f} {peak_mb:>12.1f}")
        ours_mem = results["ours"]["peak_kb"] / results["junitparser"]["peak_kb"]
        print(f"ours peak RSS / junitparser peak RSS: {ours_mem:.2f}")
        print(f"(python + lxml + flakeguard imported, nothing parsed: {baseline_rss_kb() / 1024:.1f} MB)")

        if not args.skip_big:
            big = Path(tmp) / "big.xml"
            cases = int(args.cases * args.big_gb * 1e9 / size)
            started = time.perf_counter()
            with big.open("wb") as f:
                big_size = write_large_report(f, cases)
            print(
                f"\n1 GB report: {cases} testcases, {big_size / 1e9:.2f} GB (written in "
                f"{time.perf_counter() - started:.0f} s)"
            )
            r = run_variant("ours", big)
            big.unlink()
            print(f"ours on it: {r['n'] / r['s']:,.0f} testcases/s, peak RSS {r['peak_kb'] / 1024:.1f} MB")


if __name__ == "__main__":
    main()
