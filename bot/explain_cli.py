"""`python -m bot explain [FILE|-] [--json]`: explain a saved build log from the command line."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from bot.failures import Finding, LogScanner
from bot.redaction import redact

__all__ = ["main"]

# Read in 1 MiB pieces so a multi-GB log never sits in memory whole.
_CHUNK_CHARS = 1 << 20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot explain",
        description="Classify a CodeBuild log: likely cause, fix hint and the decisive lines.",
    )
    parser.add_argument(
        "file", nargs="?", default="-", help="log file to read; '-' or nothing reads stdin"
    )
    parser.add_argument("--json", action="store_true", help="print the finding as JSON")
    return parser


def _chunks(stream: TextIO) -> Iterator[str]:
    while chunk := stream.read(_CHUNK_CHARS):
        yield chunk


def _scan(stream: TextIO) -> Finding:
    scanner = LogScanner()
    for chunk in _chunks(stream):
        scanner.feed_text(chunk)
    return scanner.finding()


def _render_text(finding: Finding, excerpt: list[str]) -> str:
    out = [
        finding.title,
        f"category: {finding.category.value}",
        f"hint: {finding.hint}",
    ]
    if excerpt:
        width = len(str(max(finding.line_numbers, default=0)))
        out.append("excerpt:")
        for number, line in zip(finding.line_numbers, excerpt, strict=True):
            marker = ">" if number == finding.decisive_line else " "
            out.append(f"{marker} {number:>{width}} | {line}")
    return "\n".join(out)


def main(argv: Sequence[str]) -> int:
    """Run the explain command; 0 whether or not a cause was found, 2 if the log can't be read."""
    args = _parser().parse_args(list(argv))
    try:
        if args.file == "-":
            if isinstance(sys.stdin, io.TextIOWrapper):
                sys.stdin.reconfigure(errors="replace")  # a stray byte mustn't abort the run
            finding = _scan(sys.stdin)
        else:
            with open(args.file, encoding="utf-8", errors="replace") as stream:
                finding = _scan(stream)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"python -m bot explain: cannot read {args.file}: {reason}", file=sys.stderr)
        return 2
    # Log lines can carry tokens; nothing leaves this process unmasked.
    excerpt = [redact(line) for line in finding.excerpt]
    if args.json:
        payload = {
            "category": finding.category.value,
            "title": finding.title,
            "hint": finding.hint,
            "excerpt": excerpt,
            "line_numbers": finding.line_numbers,
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        print(_render_text(finding, excerpt))
    return 0
