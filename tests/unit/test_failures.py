"""The failure classifier against real-shaped log tails, priorities and streaming."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.failures import (
    MAX_EXCERPT_LINES,
    RULES,
    FailureCategory,
    Finding,
    LogScanner,
    classify,
    strip_ansi,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "logs"
_HEADER = re.compile(r"^# (\w+): ?(.*)$")


@dataclass(frozen=True)
class LogFixture:
    name: str
    lines: list[str]
    headers: dict[str, str]

    @property
    def expected(self) -> FailureCategory:
        return FailureCategory(self.headers["expect"])


def load(path: Path) -> LogFixture:
    """Split the `# key: value` header from the log; line numbers count from the first log line."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    headers: dict[str, str] = {}
    while lines and (m := _HEADER.match(lines[0])):
        headers[m.group(1)] = m.group(2)
        lines.pop(0)
    return LogFixture(path.stem, lines, headers)


ALL_FIXTURES = [load(p) for p in sorted(FIXTURES.glob("*.log"))]


def classify_fixture(fx: LogFixture) -> Finding:
    return classify(
        fx.lines,
        phase_context=fx.headers.get("phase_context"),
        build_status=fx.headers.get("build_status"),
    )


def test_fixture_set_covers_every_category_and_records_sources() -> None:
    covered = {fx.expected for fx in ALL_FIXTURES}
    assert covered == set(FailureCategory)
    assert sum(fx.expected is FailureCategory.UNKNOWN for fx in ALL_FIXTURES) >= 3
    assert all(fx.headers.get("source") for fx in ALL_FIXTURES)


@pytest.mark.parametrize("fx", ALL_FIXTURES, ids=lambda fx: fx.name)
def test_fixture_is_classified(fx: LogFixture) -> None:
    finding = classify_fixture(fx)

    assert finding.category is fx.expected
    if "rule" in fx.headers:
        assert finding.rule == fx.headers["rule"]
    if fx.expected is FailureCategory.UNKNOWN:
        assert finding.rule is None
        assert finding.decisive_line is None


@pytest.mark.parametrize(
    "fx", [fx for fx in ALL_FIXTURES if "decisive" in fx.headers], ids=lambda fx: fx.name
)
def test_excerpt_holds_the_decisive_line_with_right_numbers(fx: LogFixture) -> None:
    finding = classify_fixture(fx)

    assert finding.decisive_line is not None
    decisive = fx.lines[finding.decisive_line - 1]
    assert fx.headers["decisive"] in decisive
    assert decisive in finding.excerpt
    assert len(finding.excerpt) <= MAX_EXCERPT_LINES
    assert len(finding.excerpt) == len(finding.line_numbers)
    assert finding.line_numbers == sorted(set(finding.line_numbers))
    for number, line in zip(finding.line_numbers, finding.excerpt, strict=True):
        assert fx.lines[number - 1] == line


def test_heap_message_is_decisive_over_the_exit_137_that_follows() -> None:
    finding = classify(
        [
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            " 1: 0xaaaab2c1c4e0 node::Abort() [node]",
            "[Container] 2024/05/01 12:03:11.918822 Command did not exit successfully yarn build "
            "exit status 137",
        ]
    )

    assert finding.category is FailureCategory.OUT_OF_MEMORY
    assert finding.rule == "js_heap_out_of_memory"
    assert finding.decisive_line == 1
    assert finding.excerpt[0].startswith("FATAL ERROR")


def test_peer_dependency_warning_before_an_oom_kill_does_not_win() -> None:
    finding = classify(
        [
            "➤ YN0060: │ react is listed by your project with version 18.3.1 (p4f2a1), which "
            "doesn't satisfy what @acme/charts requests (^17.0.2).",
            "➤ YN0000: · Done with warnings in 4s 201ms",
            "[Container] 2024/05/01 12:00:06.345120 Running command yarn build",
            "Killed",
            "[Container] 2024/05/01 12:03:11.918822 Command did not exit successfully yarn build "
            "exit status 137",
        ]
    )

    assert finding.category is FailureCategory.OUT_OF_MEMORY


def test_peer_dependency_warning_alone_in_a_passing_install_is_unknown() -> None:
    finding = classify(
        [
            "➤ YN0060: │ react is listed by your project with version 18.3.1 (p4f2a1), which "
            "doesn't satisfy what @acme/charts requests (^17.0.2).",
            "➤ YN0000: · Done with warnings in 4s 201ms",
        ]
    )

    assert finding.category is FailureCategory.UNKNOWN


def test_peer_dependency_warning_is_decisive_when_the_install_fails() -> None:
    yn0060 = (
        "➤ YN0060: │ react is listed by your project with version 18.3.1 (p4f2a1), which "
        "doesn't satisfy what @acme/charts requests (^17.0.2)."
    )
    failed = "➤ YN0000: · Failed with errors in 1s 377ms"

    finding = classify([yn0060, "➤ YN0000: └ Completed", failed])

    assert finding.category is FailureCategory.YARN_PEER_DEPENDENCY
    assert finding.decisive_line == 1
    assert failed in finding.excerpt


def test_peer_dependency_warning_is_confirmed_by_the_phase_context() -> None:
    lines = [
        "➤ YN0060: │ next is listed by your project with version 14.2.3 (p1c9e2), which "
        "doesn't satisfy what next-auth requests (^13.2.0).",
    ]

    finding = classify(
        lines,
        phase_context="COMMAND_EXECUTION_ERROR: Error while executing command: yarn install "
        "--immutable. Reason: exit status 1",
        build_status="FAILED",
    )

    assert finding.category is FailureCategory.YARN_PEER_DEPENDENCY
    assert finding.decisive_line == 1


def test_peer_dependency_warning_is_not_blamed_for_a_failed_build_step() -> None:
    lines = [
        "➤ YN0060: │ next is listed by your project with version 14.2.3 (p1c9e2), which "
        "doesn't satisfy what next-auth requests (^13.2.0).",
        "➤ YN0000: · Done with warnings in 4s 201ms",
        "[Container] 2024/05/01 12:03:11.918822 Command did not exit successfully yarn build "
        "exit status 1",
    ]

    finding = classify(
        lines,
        phase_context="COMMAND_EXECUTION_ERROR: Error while executing command: yarn build. "
        "Reason: exit status 1",
    )

    assert finding.category is FailureCategory.UNKNOWN


def test_equal_priority_the_last_match_wins() -> None:
    finding = classify(
        [
            "npm ERR! code ECONNRESET",
            "retrying",
            "curl: (6) Could not resolve host: registry.yarnpkg.com",
        ]
    )

    assert finding.category is FailureCategory.NETWORK
    assert finding.decisive_line == 3


def test_higher_priority_wins_even_when_earlier() -> None:
    finding = classify(
        [
            "./src/app/page.tsx:3:5",
            "#12 ERROR: failed to copy files: no space left on device",
            "Type error: Type 'string' is not assignable to type 'number'.",
        ]
    )

    assert finding.category is FailureCategory.DISK_FULL
    assert finding.decisive_line == 2


def test_exit_137_in_phase_context_alone_means_out_of_memory() -> None:
    log = ["   Creating an optimized production build ...", "   Collecting page data ..."]

    finding = classify(
        log,
        phase_context="COMMAND_EXECUTION_ERROR: Error while executing command: yarn build. "
        "Reason: exit status 137",
        build_status="FAILED",
    )

    assert finding.category is FailureCategory.OUT_OF_MEMORY
    assert finding.decisive_line is None
    assert finding.excerpt == log  # how the log ended is the best context there is
    assert finding.line_numbers == [1, 2]


def test_phase_context_does_not_beat_a_more_specific_log_line() -> None:
    finding = classify(
        ["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"],
        phase_context="COMMAND_EXECUTION_ERROR: Error while executing command: yarn build. "
        "Reason: exit status 137",
    )

    assert finding.rule == "js_heap_out_of_memory"
    assert finding.decisive_line == 1


def test_timed_out_status_means_timeout() -> None:
    finding = classify(
        ["#10 2.339    Creating an optimized production build ..."], build_status="TIMED_OUT"
    )

    assert finding.category is FailureCategory.TIMEOUT
    assert finding.rule == "codebuild_timed_out"


def test_timed_out_status_beats_the_network_retries_that_caused_it() -> None:
    finding = classify(["➤ YN0001: │ RequestError: read ECONNRESET"] * 3, build_status="TIMED_OUT")

    assert finding.category is FailureCategory.TIMEOUT


def test_stopped_build_with_clean_log_is_unknown() -> None:
    assert classify(["✓ Compiled successfully"], build_status="STOPPED").category is (
        FailureCategory.UNKNOWN
    )


@pytest.mark.parametrize(
    ("line", "category"),
    [
        ("npm ERR! code ERESOLVE", FailureCategory.YARN_PEER_DEPENDENCY),
        (
            "npm ERR! ERESOLVE unable to resolve dependency tree",
            FailureCategory.YARN_PEER_DEPENDENCY,
        ),
        (
            "error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.",
            FailureCategory.LOCKFILE_IMMUTABLE,
        ),
        (
            "npm ERR! `npm ci` can only install packages when your package.json and "
            "package-lock.json or npm-shrinkwrap.json are in sync. Please update your lock file "
            "with `npm install` before continuing.",
            FailureCategory.LOCKFILE_IMMUTABLE,
        ),
        (
            "Error response from daemon: pull access denied for shop-web, repository does not "
            "exist or may require 'docker login'",
            FailureCategory.REGISTRY_AUTH,
        ),
        ("no basic auth credentials", FailureCategory.REGISTRY_AUTH),
        ("denied: requested access to the resource is denied", FailureCategory.REGISTRY_AUTH),
        ("npm ERR! code E401", FailureCategory.REGISTRY_AUTH),
        ("npm error code E429", FailureCategory.REGISTRY_RATE_LIMIT),
        ("npm ERR! code ENOSPC", FailureCategory.DISK_FULL),
        (
            "src/app/page.tsx(3,5): error TS2322: Type 'string' is not",
            FailureCategory.COMPILE_ERROR,
        ),
        (
            "Module not found: Error: Can't resolve '@/lib/cart' in '/app/src/app'",
            FailureCategory.COMPILE_ERROR,
        ),
        ("SyntaxError: Unexpected token '<'", FailureCategory.COMPILE_ERROR),
        ("========== 2 failed, 31 passed in 4.20s ==========", FailureCategory.TEST_FAILURE),
        ("npm ERR! code EAI_AGAIN", FailureCategory.NETWORK),
        ("net/http: TLS handshake timeout", FailureCategory.NETWORK),
        ("dial tcp 10.0.0.12:443: connect: connection refused", FailureCategory.NETWORK),
        ("npm ERR! code ETIMEDOUT", FailureCategory.TIMEOUT),
        ("error An unexpected error occurred: ESOCKETTIMEDOUT", FailureCategory.TIMEOUT),
        (
            "[Container] 2024/05/01 12:00:00.1 Phase complete: BUILD State: TIMED_OUT",
            FailureCategory.TIMEOUT,
        ),
        (
            "standard_init_linux.go:228: exec user process caused: exec format error",
            FailureCategory.EXEC_FORMAT,
        ),
        ("Received SIGKILL, shutting down", FailureCategory.OUT_OF_MEMORY),
        (
            "/bin/sh: line 1:   412 Killed                  next build",
            FailureCategory.OUT_OF_MEMORY,
        ),
        ("Error: spawn ENOMEM", FailureCategory.OUT_OF_MEMORY),
        ("fork: Cannot allocate memory", FailureCategory.OUT_OF_MEMORY),
    ],
)
def test_single_line_causes(line: str, category: FailureCategory) -> None:
    finding = classify(["$ yarn build", line, "done"])

    assert finding.category is category
    assert finding.decisive_line == 2


@pytest.mark.parametrize(
    "line",
    [
        "yarn install --network-timeout 600000",
        "found 0 vulnerabilities",
        "➤ YN0013: │ error-ex@npm:1.3.2 can't be found in the cache",
        "➤ YN0013: │ is-error@npm:2.2.2 can't be found in the cache",
        "➤ YN0000: · Done with warnings in 31s 601ms",
        "Tests:       0 failed, 87 passed, 87 total",
        'warning " > react-dom@18.3.1" has unmet peer dependency "react@^18.3.1".',
        "npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
        "Error: ENOSPC: System limit for number of file watchers reached, watch '/app/src'",
        "├ ○ /_not-found                          137 B          87.2 kB",
        "killed 3 stale workers",
        "  ✓ handles a failed payment (12 ms)",
    ],
)
def test_harmless_lines_are_unknown(line: str) -> None:
    assert classify(["$ yarn build", line, "Done in 12.3s."]).category is FailureCategory.UNKNOWN


def test_platform_warning_in_a_passing_build_is_unknown() -> None:
    warning = (
        "WARNING: The requested image's platform (linux/amd64) does not match the detected host "
        "platform (linux/arm64/v8) and no specific platform was requested"
    )

    assert classify([warning, "smoke ok"]).category is FailureCategory.UNKNOWN
    assert classify([warning, "smoke ok"], build_status="FAILED").category is (
        FailureCategory.EXEC_FORMAT
    )


def test_silent_fetch_failure_needs_the_fetch_step_to_be_last() -> None:
    after_link = [
        "➤ YN0000: ┌ Fetch step",
        "➤ YN0000: └ Completed in 43s 967ms",
        "➤ YN0000: ┌ Link step",
        "[Container] 2024/05/05 07:41:54.012288 Command did not exit successfully yarn install "
        "--immutable exit status 1",
    ]
    with_error_code = [
        "➤ YN0000: ┌ Fetch step",
        "➤ YN0018: │ typescript@npm:5.4.5: The remote archive doesn't match the expected checksum",
        "[Container] 2024/05/05 07:41:54.012288 Command did not exit successfully yarn install "
        "--immutable exit status 1",
    ]
    unterminated = [
        "➤ YN0000: ┌ Fetch step",
        "[Container] 2024/05/05 07:41:54.012288 Command did not exit successfully yarn install "
        "--immutable exit status 1",
    ]

    assert classify(after_link).category is FailureCategory.UNKNOWN
    assert classify(with_error_code).category is FailureCategory.UNKNOWN
    finding = classify(unterminated)
    assert finding.rule == "yarn_immutable_silent_fetch_failure"
    assert finding.decisive_line == 2


def test_silent_fetch_failure_keeps_the_fetch_step_line_in_a_long_excerpt() -> None:
    lines = ["➤ YN0000: ┌ Fetch step"]
    lines += [f"➤ YN0013: │ pkg-{i}@npm:1.0.0 can't be found in the cache" for i in range(200)]
    lines.append("Command did not exit successfully yarn install --immutable exit status 1")

    finding = classify(lines)

    assert finding.category is FailureCategory.LOCKFILE_IMMUTABLE
    assert finding.line_numbers[0] == 1
    assert finding.excerpt[0] == lines[0]
    assert finding.decisive_line == len(lines)


def test_buildkit_and_ansi_input() -> None:
    lines = [
        "#10 [builder 5/7] RUN yarn build",
        "#10 2.331 \x1b[1m\x1b[38;2;173;127;168m   ▲ Next.js 14.2.3\x1b[39m\x1b[22m",
        "#10 183.0 \x1b[31mFATAL ERROR:\x1b[39m Reached heap limit Allocation failed - "
        "JavaScript heap out of memory",
        '#10 ERROR: process "/bin/sh -c yarn build" did not complete successfully: exit code: 137',
    ]

    finding = classify(lines)

    assert finding.rule == "js_heap_out_of_memory"
    assert finding.decisive_line == 3
    assert finding.excerpt[2] == (
        "#10 183.0 FATAL ERROR: Reached heap limit Allocation failed - "
        "JavaScript heap out of memory"
    )
    assert not any("\x1b" in line for line in finding.excerpt)


def test_ansi_split_keyword_is_still_found() -> None:
    finding = classify(["\x1b[31mnpm\x1b[39m \x1b[31mERR!\x1b[39m code \x1b[1mERESOLVE\x1b[22m"])

    assert finding.category is FailureCategory.YARN_PEER_DEPENDENCY
    assert finding.excerpt == ["npm ERR! code ERESOLVE"]


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[2K\x1b[1G\x1b[32m✓\x1b[0m ok") == "✓ ok"
    assert strip_ansi("plain") == "plain"


def test_lines_with_trailing_newlines_are_one_line_each() -> None:
    finding = classify(["a\n", "b\r\n", "Killed\n", "c\n"])

    assert finding.decisive_line == 3
    assert finding.excerpt == ["a", "b", "Killed", "c"]


def test_excerpt_context_is_five_lines_each_side_by_default() -> None:
    lines = [f"line {i}" for i in range(1, 101)]
    lines[49] = "Killed"

    finding = classify(lines)

    assert finding.line_numbers == list(range(45, 56))
    assert finding.excerpt == lines[44:55]


def test_context_lines_is_configurable_and_capped_at_30_lines() -> None:
    lines = [f"line {i}" for i in range(1, 201)]
    lines[99] = "Killed"

    small = LogScanner(context_lines=1)
    small.feed(lines)
    big = LogScanner(context_lines=100)
    big.feed(lines)

    assert small.finding().line_numbers == [99, 100, 101]
    assert len(big.finding().excerpt) <= MAX_EXCERPT_LINES
    assert 100 in big.finding().line_numbers


@pytest.mark.parametrize("chunk", [1, 3, 7, 4095, 4096, 4097, 10_000])
def test_streaming_in_any_chunk_size_matches_one_shot(chunk: int) -> None:
    lines = [f"➤ YN0013: │ pkg-{i}@npm:1.0.0 can't be found in the cache" for i in range(9000)]
    lines[4094] = (
        "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
    )
    lines[8000] = (
        "[Container] 2024/05/01 Command did not exit successfully yarn build exit status 137"
    )
    whole = classify(lines)

    scanner = LogScanner()
    for start in range(0, len(lines), chunk):
        scanner.feed(lines[start : start + chunk])

    assert scanner.finding() == whole
    assert whole.decisive_line == 4095
    assert whole.line_numbers == list(range(4090, 4101))


@pytest.mark.parametrize("size", [1, 2, 5, 64, 1000, 1 << 20])
def test_feed_text_in_any_chunk_size_matches_feeding_lines(size: int) -> None:
    lines = [
        f"#9 {i}.0 ➤ YN0013: │ pkg-{i}@npm:1.0.0 can't be found in the cache" for i in range(300)
    ]
    lines[150] = "#9 150.0 \x1b[31mnpm ERR!\x1b[39m code ERESOLVE"
    text = "\n".join(lines)  # no trailing newline: the last line must still count
    scanner = LogScanner()

    for start in range(0, len(text), size):
        scanner.feed_text(text[start : start + size])
    finding = scanner.finding()

    assert finding == classify(lines)
    assert finding.decisive_line == 151
    assert finding.excerpt[5] == "#9 150.0 npm ERR! code ERESOLVE"


def test_feed_text_counts_blank_lines() -> None:
    scanner = LogScanner()
    scanner.feed_text("\n\nfirst\n")
    scanner.feed_text("\nKilled\n\n")

    finding = scanner.finding()

    assert finding.decisive_line == 5
    assert finding.line_numbers == [1, 2, 3, 4, 5, 6]


def test_scanner_memory_does_not_keep_the_log() -> None:
    scanner = LogScanner()
    for i in range(50):
        scanner.feed(f"noise line {i}-{j}" for j in range(5000))

    assert len(scanner._tail) <= 15
    assert scanner._best is None


def test_empty_log_is_unknown_with_empty_excerpt() -> None:
    finding = classify([])

    assert finding.category is FailureCategory.UNKNOWN
    assert finding.excerpt == []
    assert finding.line_numbers == []


def test_every_rule_is_distinctly_named_and_has_triggers() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))
    assert all(rule.triggers and rule.patterns and rule.hint and rule.title for rule in RULES)


@pytest.mark.parametrize(
    "fx", [fx for fx in ALL_FIXTURES if "decisive" in fx.headers], ids=lambda fx: fx.name
)
def test_decisive_lines_contain_one_of_the_rule_triggers(fx: LogFixture) -> None:
    finding = classify_fixture(fx)
    rule = next(r for r in RULES if r.name == finding.rule)

    assert finding.decisive_line is not None
    assert any(t in fx.lines[finding.decisive_line - 1] for t in rule.triggers)


def test_feed_and_feed_text_can_be_mixed() -> None:
    scanner = LogScanner()
    scanner.feed_text("one\ntwo")  # "two" has no newline yet
    scanner.feed(["Killed", "four"])

    finding = scanner.finding()

    assert finding.decisive_line == 3
    assert finding.excerpt == ["one", "two", "Killed", "four"]


def test_finding_is_frozen() -> None:
    finding = classify(["Killed"])

    with pytest.raises(ValueError, match="frozen"):
        finding.title = "changed"  # type: ignore[misc]
