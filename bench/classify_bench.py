"""Throughput and memory of LogScanner on a large synthetic CodeBuild log, next to grep -E.

Run: python bench/classify_bench.py [--size-mb 200]. Prints plain numbers. No network; the log is
generated deterministically in a temporary directory and deleted afterwards.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.failures import RULES, Finding, LogScanner, _scan_key

_CHUNK_CHARS = 1 << 20
_PACKAGES = (
    "react", "react-dom", "next", "@next/swc-linux-arm64-gnu", "typescript", "error-ex",
    "is-error", "lodash", "zod", "@radix-ui/react-dialog", "postcss", "tailwindcss", "sharp",
    "eslint", "eslint-config-next", "jest", "ts-jest", "@types/node", "caniuse-lite", "semver",
)  # fmt: skip


def _noise(rng: random.Random, i: int) -> str:
    """One plausible, harmless build-log line."""
    pkg = rng.choice(_PACKAGES)
    ver = f"{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
    t = f"{rng.randint(0, 300)}.{rng.randint(0, 999):03d}"
    slug = pkg.strip("@").replace("/", "-")
    kind = rng.randrange(16)
    if kind < 4:
        return f"➤ YN0013: │ {pkg}@npm:{ver} can't be found in the cache and will be fetched"
    if kind == 4:
        return f"#12 {t} ➤ YN0013: │ {pkg}@npm:{ver} can't be found in the cache"
    if kind == 5:
        stamp = f"12:{i % 60:02d}:{i % 59:02d}.{i % 999999:06d}"
        return f"[Container] 2024/05/01 {stamp} Running command yarn build"
    if kind == 6:
        return f"   ├ ○ /shop/{slug}/{i % 500}    {rng.randint(1, 900)} B    87.{i % 10} kB"
    if kind == 7:
        chunk = f"{i:x}-{rng.getrandbits(32):08x}"
        return f"asset static/chunks/{chunk}.js {rng.randint(1, 900)} KiB [emitted] [minimized]"
    if kind == 8:
        return f'warning " > {pkg}@{ver}" has unmet peer dependency "react@^18.2.0".'
    if kind == 9:
        return f"npm WARN deprecated {pkg}@{ver}: This version is no longer supported, upgrade"
    if kind == 10:
        return f"#14 {t} \x1b[32m✓\x1b[39m Generating static pages ({i % 48}/48)"
    if kind == 11:
        return f"PASS src/components/{slug}.test.tsx ({t} s)"
    if kind == 12:
        return "found 0 vulnerabilities"
    if kind == 13:
        return f"webpack {ver} compiled with 2 warnings in {rng.randint(100, 99999)} ms"
    if kind == 14:
        return f"info  - Collecting page data for /api/orders/{i % 1000} --network-timeout 600000"
    return f"    at Module._compile (node:internal/modules/cjs/loader:{rng.randint(1, 2000)}:14)"


_FAILURE_TAIL = (
    "   Creating an optimized production build ...",
    "<--- Last few GCs --->",
    "[412:0xffff8c0b0000]   184577 ms: Mark-Compact 2023.8 (2084.1) -> 2019.6 (2095.4) MB",
    "<--- JS stacktrace --->",
    "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
    " 1: 0xaaaab2c1c4e0 node::Abort() [node]",
    "Aborted (core dumped)",
    "[Container] 2024/05/01 12:03:11.918822 Command did not exit successfully yarn build exit "
    "status 137",
    "[Container] 2024/05/01 12:03:11.922310 Phase complete: BUILD State: FAILED",
)


def generate(path: Path, size_mb: int, seed: int = 7) -> int:
    """Write a log of about size_mb MB whose only real failure is a heap OOM near the end."""
    rng = random.Random(seed)
    target = size_mb * 1_000_000
    written, i = 0, 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < target:
            block = "\n".join(_noise(rng, i + k) for k in range(5000)) + "\n"
            out.write(block)
            written += len(block.encode())
            i += 5000
        tail = "\n".join(_FAILURE_TAIL) + "\n" + "\n".join(_noise(rng, i + k) for k in range(20))
        out.write(tail + "\n")
    return path.stat().st_size


def _chunks(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as stream:
        while chunk := stream.read(_CHUNK_CHARS):
            yield chunk


def classify_file(path: Path) -> Finding:
    scanner = LogScanner()
    for chunk in _chunks(path):
        scanner.feed_text(chunk)
    return scanner.finding()


def time_classify(path: Path, repeat: int) -> tuple[float, Finding]:
    best, finding = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        finding = classify_file(path)
        best = min(best, time.perf_counter() - start)
    assert finding is not None
    return best, finding


def peak_memory(path: Path) -> int:
    gc.collect()
    tracemalloc.start()
    classify_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def grep_pattern() -> str:
    """The scanner's prefilter keys as one POSIX extended regex."""
    keys = sorted({_scan_key(t) for rule in RULES for t in rule.triggers})
    return "|".join(re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", k) for k in keys)


def time_grep(path: Path, repeat: int) -> tuple[float, int] | None:
    grep = shutil.which("grep")
    if grep is None:
        return None
    env = {**os.environ, "LC_ALL": "C"}
    best, count = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(
            [grep, "-E", "-c", "-e", grep_pattern(), str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        best = min(best, time.perf_counter() - start)
        count = int(proc.stdout.strip() or 0)
    return best, count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the big log (MB)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs; the best counts")
    args = parser.parse_args(argv)
    small_mb = max(1, args.size_mb // 4)

    with tempfile.TemporaryDirectory(prefix="classify-bench-") as tmp:
        big, small = Path(tmp) / "big.log", Path(tmp) / "small.log"
        t0 = time.perf_counter()
        big_bytes = generate(big, args.size_mb)
        small_bytes = generate(small, small_mb)
        print(f"generated_mb {big_bytes / 1e6:.1f} and {small_bytes / 1e6:.1f} "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip

        seconds, finding = time_classify(big, args.repeat)
        ours = big_bytes / 1e6 / seconds
        print(f"classify_seconds {seconds:.3f}")
        print(f"classify_mb_per_s {ours:.1f}")
        print(f"finding {finding.category.value} rule={finding.rule} line={finding.decisive_line} "
              f"excerpt_lines={len(finding.excerpt)}")  # fmt: skip

        peak_small, peak_big = peak_memory(small), peak_memory(big)
        print(f"peak_tracemalloc_mb {small_bytes / 1e6:.0f}MB_log {peak_small / 1e6:.2f}")
        print(f"peak_tracemalloc_mb {big_bytes / 1e6:.0f}MB_log {peak_big / 1e6:.2f}")

        grep = time_grep(big, args.repeat)
        if grep is None:
            print("grep not found")
        else:
            grep_seconds, grep_lines = grep
            grep_rate = big_bytes / 1e6 / grep_seconds
            print(f"grep_E_seconds {grep_seconds:.3f} matching_lines {grep_lines}")
            print(f"grep_E_mb_per_s {grep_rate:.1f}")
            print(f"ratio_ours_over_grep {ours / grep_rate:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
