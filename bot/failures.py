"""Classify a failed CodeBuild log into a cause, the decisive excerpt and a fix hint."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Final

from pydantic import BaseModel, ConfigDict

__all__ = [
    "RULES",
    "FailureCategory",
    "FailureRule",
    "Finding",
    "LogScanner",
    "classify",
    "strip_ansi",
]

MAX_EXCERPT_LINES: Final = 30
# Lines shown for an unknown cause or a cause known only from the build status.
TAIL_LINES: Final = 15
# Lines joined into one string per regex scan: big enough that the C scanner does the work,
# small enough that a batch is a bounded amount of memory.
_BATCH_LINES: Final = 4096


class FailureCategory(StrEnum):
    """Why a build failed, coarse enough to map to one fix."""

    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"
    EXEC_FORMAT = "exec_format"
    YARN_PEER_DEPENDENCY = "yarn_peer_dependency"
    LOCKFILE_IMMUTABLE = "lockfile_immutable"
    REGISTRY_AUTH = "registry_auth"
    REGISTRY_RATE_LIMIT = "registry_rate_limit"
    DISK_FULL = "disk_full"
    COMPILE_ERROR = "compile_error"
    TEST_FAILURE = "test_failure"
    NETWORK = "network"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FailureRule:
    """One named cause: which lines prove it, how strongly, and what to tell the user.

    ``triggers`` are plain substrings; every line any of the rule's regexes can match must contain
    one of them. They feed the single prefilter scan, so most lines never meet a regex.

    A rule with ``confirm`` patterns is *weak*: its match is only evidence once a later line (or
    the phase context) shows the step actually failed, e.g. Yarn's YN0060 is a warning.
    A rule with ``armed_by`` only matches between an arming line and a disarming line, e.g. an
    exit 1 of ``yarn install`` counts only while Yarn is still in its Fetch step.
    """

    name: str
    category: FailureCategory
    patterns: tuple[re.Pattern[str], ...]
    title: str
    hint: str
    priority: int
    triggers: tuple[str, ...]
    confirm: tuple[re.Pattern[str], ...] = ()
    confirm_on_failed_status: bool = False
    armed_by: tuple[re.Pattern[str], ...] = ()
    disarmed_by: tuple[re.Pattern[str], ...] = ()

    @property
    def is_weak(self) -> bool:
        return bool(self.confirm) or self.confirm_on_failed_status

    @property
    def is_stateful(self) -> bool:
        return bool(self.armed_by)


class Finding(BaseModel):
    """What the bot tells a human about a failed build."""

    model_config = ConfigDict(frozen=True)

    category: FailureCategory
    rule: str | None
    title: str
    hint: str
    excerpt: list[str]
    line_numbers: list[int]
    decisive_line: int | None


def _rx(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


# "yarn install" as CodeBuild echoes it: bare `yarn`, `yarn install`, flags, maybe via corepack.
_YARN_INSTALL = r"(?:corepack )?yarn(?: install)?(?: --?[\w-]+(?:=\S+)?)*"

# Lines that show *some* step failed; used to confirm weak evidence such as Docker's platform
# warning, which is harmless in a build that goes on to pass.
_GENERIC_FAILURE = _rx(
    r"Command did not exit successfully .* exit status [1-9]",
    r"State: FAILED",
    r"returned a non-zero code: [1-9]",
    r"did not complete successfully: exit code: [1-9]",
    r"ERROR: failed to solve",
    r"[Ee]xit(?:ed with)? code:? [1-9]",
)
_GENERIC_FAILURE_TRIGGERS = (
    "Command did not exit successfully",
    "State: FAILED",
    "non-zero code",
    "ERROR: failed to solve",
    "xit code",  # also BuildKit's "did not complete successfully: exit code: N"
    "xited with code",
)

# Yarn's own failure summary, or CodeBuild/BuildKit reporting the install command failed.
_YARN_INSTALL_FAILED = _rx(
    r"YN0000: .*Failed with errors",
    rf"Command did not exit successfully {_YARN_INSTALL} exit status [1-9]",
    rf"Error while executing command: {_YARN_INSTALL}\. Reason: exit status [1-9]",
    rf'"/bin/sh -c [^"]*\b{_YARN_INSTALL}" did not complete successfully: exit code: [1-9]',
)
_YARN_INSTALL_FAILED_TRIGGERS = (
    "Failed with errors",
    "Command did not exit successfully",
    "Error while executing command",
    "xit code: ",
)

_HINT_OOM = (
    "Give the Next.js build more memory: set NODE_OPTIONS=--max-old-space-size=6144 (about 1-2 GB "
    "below the container's RAM) in the buildspec env or as an ENV/--build-arg in the Dockerfile "
    "if `yarn build` runs inside `docker build`, or move the CodeBuild project to a larger arm64 "
    "compute type (e.g. BUILD_GENERAL1_LARGE on ARM_CONTAINER)."
)
_HINT_KILLED = (
    "Exit status 137 means the process got SIGKILL, almost always the container's memory limit. "
    "Use a larger arm64 compute type, or cap Node below the container's RAM with "
    "NODE_OPTIONS=--max-old-space-size=... so Node fails with a clear heap error instead of being "
    "killed; avoid running memory-heavy steps (next build, docker build stages) in parallel."
)
_HINT_CODEBUILD_TIMEOUT = (
    "CodeBuild stopped the build at the project's timeout. Check which phase was slow: cache "
    ".yarn/cache and .next/cache between builds (S3 or local cache), look for a hung network "
    "fetch, or raise the project's timeoutInMinutes if the build is legitimately long."
)
_HINT_NETWORK_TIMEOUT = (
    "A package download timed out and ended the install. Usually transient: retry the build. If "
    "it recurs, raise httpTimeout/httpRetry in .yarnrc.yml (Yarn 4 ignores the classic "
    "--network-timeout flag), cache .yarn/cache between builds, and if the project runs in a VPC "
    "check its NAT gateway route to registry.yarnpkg.com / registry.npmjs.org."
)
_HINT_EXEC_FORMAT = (
    "Something built for another CPU architecture ran on arm64. CodeBuild and the EC2 Graviton "
    "hosts are arm64: build with `docker buildx build --platform linux/arm64`, use arm64 or "
    "multi-arch base images (FROM --platform=linux/arm64 node:...), don't copy node_modules or "
    "native binaries built on an x86 laptop into the image, and make sure the entrypoint script "
    "has a #! line and LF line endings."
)
_HINT_PEER = (
    "Yarn found incompatible or missing peer dependencies and the install failed. Run `yarn "
    "explain peer-requirements <hash>` locally to see who asks for what, align the versions in "
    "package.json (or add a packageExtensions entry in .yarnrc.yml), then commit yarn.lock."
)
_HINT_ERESOLVE = (
    "npm could not resolve the peer dependency tree. Align the conflicting versions in "
    "package.json; this project builds with Yarn 4, so also check the buildspec/Dockerfile isn't "
    "running npm install by mistake."
)
_HINT_LOCKFILE = (
    "package.json and the lockfile disagree and CI installs are immutable. Run `yarn install` "
    "locally with the Yarn version pinned in package.json's packageManager field, commit the "
    "updated yarn.lock and push again."
)
_HINT_SILENT_IMMUTABLE = (
    "`yarn install --immutable` exited 1 in the Fetch step without an error code. With "
    "--immutable this usually means the install would have changed yarn.lock or the cache, e.g. "
    "a lockfile written by another Yarn version or one missing arm64-only optional packages. Run "
    "`yarn install` with the pinned Yarn 4 on an arm64 machine, commit yarn.lock; if it persists, "
    "rerun with YARN_ENABLE_PROGRESS_BARS=false to see Yarn's full output."
)
_HINT_REGISTRY_AUTH = (
    "The registry refused our credentials. For ECR, log in during pre_build (`aws ecr "
    "get-login-password | docker login --username AWS --password-stdin <account>.dkr.ecr."
    "<region>.amazonaws.com`; tokens last 12 h) and check the CodeBuild role has "
    "ecr:GetAuthorizationToken plus pull/push on the repository. For npm E401, check the token "
    "behind .npmrc/.yarnrc.yml npmAuthToken."
)
_HINT_RATE_LIMIT = (
    "Docker Hub's anonymous pull limit was hit (CodeBuild builds share egress IPs). Pull base "
    "images from ECR Public (public.ecr.aws/docker/library/node) or an ECR pull-through cache, or "
    "`docker login` to Docker Hub with a token from Secrets Manager before building."
)
_HINT_DISK = (
    "The build ran out of disk. Keep the Docker build context small with .dockerignore "
    "(node_modules, .next, .git), prune between builds (`docker builder prune -af`), or use a "
    "compute type with more disk."
)
_HINT_COMPILE = (
    "The Next.js/TypeScript build failed on a code error at the file and line shown. Reproduce "
    "with `yarn build` (or `yarn tsc --noEmit`) locally, fix it and push."
)
_HINT_TEST = (
    "Tests failed; the excerpt shows the failing suite. Reproduce with `yarn test` locally."
)
_HINT_NETWORK = (
    "A network call from the build failed (DNS or connection). Usually transient: retry. If it "
    "recurs, check the CodeBuild VPC settings (NAT gateway, DNS, security groups) and that the "
    "host in the excerpt is reachable."
)
_HINT_UNKNOWN = (
    "No known failure pattern matched. Read the last lines of the log below and the failed "
    "phase; if this failure recurs, add a rule for it to bot/failures.py."
)

# Ordered by category; the priority field, not the order, decides between causes.
RULES: Final[tuple[FailureRule, ...]] = (
    # source: vercel/next.js#32314, vercel/next-learn#122 (V8's fatal heap message).
    FailureRule(
        name="js_heap_out_of_memory",
        category=FailureCategory.OUT_OF_MEMORY,
        patterns=_rx(
            r"JavaScript heap out of memory",
            r"Reached heap limit Allocation failed",
            r"Cannot allocate memory",
            r"container ran out of memory",
            r"\bENOMEM\b",
        ),
        title="The build ran out of memory",
        hint=_HINT_OOM,
        priority=90,
        triggers=(
            "JavaScript heap",
            "Reached heap",
            "Cannot allocate memory",
            "of memory",
            "ENOMEM",
        ),
    ),
    # source: travis-ci/travis-ci#4192, commercetools-docs-kit#1424 ("Killed" + exit code 137).
    FailureRule(
        name="killed_exit_137",
        category=FailureCategory.OUT_OF_MEMORY,
        patterns=_rx(
            r"exit status 137\b",
            r"exit code:? 137\b",
            r"exited with (?:code )?137\b",
            r"non-zero code: 137\b",
            r"(?:^|[\s:])Killed(?:\s|$)",
            r"\bSIGKILL\b",
        ),
        title="The build was killed, most likely out of memory",
        hint=_HINT_KILLED,
        priority=80,
        triggers=(
            "xit status 137",
            "xit code",
            "xited with",
            "zero code: 137",
            "Killed",
            "SIGKILL",
        ),
    ),
    # source: CodeBuild phase context status code BUILD_TIMED_OUT ("Build has timed out").
    FailureRule(
        name="codebuild_timed_out",
        category=FailureCategory.TIMEOUT,
        patterns=_rx(r"\bBUILD_TIMED_OUT\b", r"Build has timed out", r"State: TIMED_OUT\b"),
        title="The build hit CodeBuild's timeout",
        hint=_HINT_CODEBUILD_TIMEOUT,
        priority=95,
        triggers=("TIMED_OUT", "Build has timed out"),
    ),
    # source: yarnpkg/berry#6389 ("YN0001: │ RequestError: connect ETIMEDOUT ...:443").
    FailureRule(
        name="fetch_timed_out",
        category=FailureCategory.TIMEOUT,
        patterns=_rx(r"\bE(?:SOCKET)?TIMEDOUT\b", r"Request timed out", r"\bcode ETIMEDOUT\b"),
        title="A package download timed out",
        hint=_HINT_NETWORK_TIMEOUT,
        priority=60,
        triggers=("TIMEDOUT", "Request timed out"),
    ),
    # source: docker/compose#10185, docker-library/mongo#573, langfuse/langfuse#2556.
    FailureRule(
        name="exec_format_error",
        category=FailureCategory.EXEC_FORMAT,
        patterns=_rx(r"exec format error"),
        title="A binary for the wrong CPU architecture was run",
        hint=_HINT_EXEC_FORMAT,
        priority=100,
        triggers=("exec format error",),
    ),
    # source: Red5d/docker-autocompose#29, justwatchcom/sql_exporter#93 (Docker's warning).
    # Only a warning: it explains a failure, it isn't one (qemu can run the image).
    FailureRule(
        name="docker_platform_mismatch",
        category=FailureCategory.EXEC_FORMAT,
        patterns=_rx(
            r"requested image's platform \([^)]*\) does not match the detected host platform",
            r"\bInvalidBaseImagePlatform\b",
        ),
        title="An image for another CPU architecture was used on the arm64 host",
        hint=_HINT_EXEC_FORMAT,
        priority=20,
        triggers=(
            "The requested image's platform",
            "InvalidBaseImagePlatform",
            *_GENERIC_FAILURE_TRIGGERS,
        ),
        confirm=_GENERIC_FAILURE,
        confirm_on_failed_status=True,
    ),
    # source: yarnpkg/berry#6618 (YN0060 "... which doesn't satisfy what ... request"),
    # EdgeApp/edge-core-js#514 (YN0002 "doesn't provide ..., requested by ..."). Both are warnings
    # in Yarn 4, so they only count once the install itself failed.
    FailureRule(
        name="yarn_peer_dependency",
        category=FailureCategory.YARN_PEER_DEPENDENCY,
        patterns=_rx(
            r"YN0060: .*doesn't satisfy what",
            r"YN0060: .*provides .* which doesn't satisfy",
            r"YN0002: .*doesn't provide .*requested by",
        ),
        title="Incompatible peer dependencies broke the Yarn install",
        hint=_HINT_PEER,
        priority=30,
        triggers=("YN0060", "YN0002", *_YARN_INSTALL_FAILED_TRIGGERS),
        confirm=_YARN_INSTALL_FAILED,
    ),
    # source: npm/cli#3236, npm/cli#2000 ("npm ERR! ERESOLVE unable to resolve dependency tree").
    FailureRule(
        name="npm_eresolve",
        category=FailureCategory.YARN_PEER_DEPENDENCY,
        patterns=_rx(r"ERESOLVE unable to resolve dependency tree", r"\bcode ERESOLVE\b"),
        title="npm could not resolve the peer dependency tree",
        hint=_HINT_ERESOLVE,
        priority=58,
        triggers=("ERESOLVE",),
    ),
    # source: yarnpkg/berry#2948, Mr-Homeless/waldo#120 (YN0028), yarnpkg/yarn#2052 (classic),
    # open-source-uom/myuom#78 and mozilla/fxa#5078 (npm ci / cipm).
    FailureRule(
        name="lockfile_out_of_date",
        category=FailureCategory.LOCKFILE_IMMUTABLE,
        patterns=_rx(
            r"YN0028: .*The lockfile would have been (?:modified|created) by this install",
            r"YN0028: ",
            r"Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`",
            r"can only install packages when your package\.json and package-lock\.json",
            r"\bERR_PNPM_OUTDATED_LOCKFILE\b",
        ),
        title="The lockfile is out of date and CI installs are immutable",
        hint=_HINT_LOCKFILE,
        priority=70,
        triggers=(
            "YN0028",
            "--frozen-lockfile",
            "can only install packages when",
            "OUTDATED_LOCKFILE",
        ),
    ),
    # Yarn 4 with --immutable (the default on CI) can exit 1 right after the Fetch step without
    # any YNxxxx error; seen on our arm64 builds, shape as in lowcoder-org/lowcoder#298.
    FailureRule(
        name="yarn_immutable_silent_fetch_failure",
        category=FailureCategory.LOCKFILE_IMMUTABLE,
        patterns=_rx(
            rf"Command did not exit successfully {_YARN_INSTALL} exit status 1\b",
            rf"Error while executing command: {_YARN_INSTALL}\. Reason: exit status 1\b",
            rf'"/bin/sh -c [^"]*\b{_YARN_INSTALL}" did not complete successfully: exit code: 1\b',
            r"^Reason: exit status 1\b",
        ),
        title="`yarn install --immutable` failed silently in the Fetch step",
        hint=_HINT_SILENT_IMMUTABLE,
        priority=68,
        triggers=(
            "xit status 1",
            "xit code: 1",
            "Fetch step",
            "Link step",
            "YN0001",
            "YN0009",
            "YN0018",
            "YN0028",
            "YN0035",
            "YN0041",
            "YN0080",
        ),
        armed_by=_rx(r"YN0000: ┌ Fetch step"),
        disarmed_by=_rx(
            r"YN0000: ┌ Link step", r"YN00(?:01|09|18|28|35|41|80): ", r"YN0000: · Done\b"
        ),
    ),
    # source: buildkite/elastic-ci-stack-for-aws#178, aws/aws-cli#6580 (ECR), npm E401.
    FailureRule(
        name="registry_auth",
        category=FailureCategory.REGISTRY_AUTH,
        patterns=_rx(
            r"[Aa]uthorization [Tt]oken has expired",
            r"no basic auth credentials",
            r"pull access denied",
            r"denied: requested access to the resource is denied",
            r"\b401 Unauthorized\b",
            r"unauthorized: authentication required",
            r"\bcode E401\b",
            r"YN0041: ",
        ),
        title="The registry rejected the build's credentials",
        hint=_HINT_REGISTRY_AUTH,
        priority=75,
        triggers=(
            "uthorization token has expired",
            "uthorization Token has expired",
            "basic auth credentials",
            # Docker and BuildKit end "pull access denied" with one of these two.
            "may require 'docker login'",
            "may require authorization",
            "requested access to the resource",
            "Unauthorized",
            "authentication required",
            "E401",
            "YN0041",
        ),
    ),
    # source: aws-samples/aws-modern-application-workshop#237, docker/hub-feedback#2429.
    FailureRule(
        name="registry_rate_limit",
        category=FailureCategory.REGISTRY_RATE_LIMIT,
        patterns=_rx(
            r"toomanyrequests",
            r"TOOMANYREQUESTS",
            r"You have reached your pull rate limit",
            r"\b429 Too Many Requests\b",
            r"\bcode E429\b",
        ),
        title="A registry rate limit was hit",
        hint=_HINT_RATE_LIMIT,
        priority=76,
        triggers=(
            "toomanyrequests",  # Docker Hub's pull-limit message always carries the code
            "TOOMANYREQUESTS",
            "Too Many Requests",
            "E429",
        ),
    ),
    # source: moby/moby#32811, cdklabs/cdk-ecr-deployment#81. "ENOSPC: System limit for number of
    # file watchers" is inotify, not disk, so it is excluded.
    FailureRule(
        name="disk_full",
        category=FailureCategory.DISK_FULL,
        patterns=_rx(
            r"[Nn]o space left on device",
            r"\bENOSPC\b(?!: System limit for number of file watchers)",
        ),
        title="The build ran out of disk space",
        hint=_HINT_DISK,
        priority=85,
        triggers=("space left on device", "ENOSPC"),
    ),
    # source: vercel/next.js#89525, devias-io/material-kit-react#166 ("Failed to compile." /
    # "Type error: ..."), tsc "error TS2322:".
    FailureRule(
        name="compile_error",
        category=FailureCategory.COMPILE_ERROR,
        patterns=_rx(
            r"\berror TS\d{4}:",
            r"^Failed to (?:compile|type check)\.",
            r"^Type error: ",
            r"Module not found: (?:Error: )?Can't resolve",
            r"\bSyntaxError: ",
            r"^Syntax error: ",
            r"Build failed because of webpack errors",
        ),
        title="The code failed to compile",
        hint=_HINT_COMPILE,
        priority=50,
        triggers=(
            "error TS",
            "Failed to",
            "Type error: ",
            "Module not found",
            "SyntaxError",
            "Syntax error",
            "Build failed because of webpack errors",
        ),
    ),
    # Jest summary ("Tests:  3 failed, ...", "FAIL src/..."), pytest ("=== 2 failed, ...").
    FailureRule(
        name="test_failure",
        category=FailureCategory.TEST_FAILURE,
        patterns=_rx(
            r"^Tests?:\s+[1-9]\d* failed",
            r"^Test Suites:\s+[1-9]\d* failed",
            r"^\s*FAIL\s+\S+\.(?:[cm]?[jt]sx?|py)\b",
            r"^=+ (?:.*, )?[1-9]\d* failed\b",
        ),
        title="Tests failed",
        hint=_HINT_TEST,
        priority=45,
        triggers=("Tests:", "Test:", "Test Suites:", "FAIL", "failed"),
    ),
    # source: iam4x/bobarr#100 (EAI_AGAIN), Node's ENOTFOUND/ECONNRESET, curl/git messages.
    FailureRule(
        name="network_error",
        category=FailureCategory.NETWORK,
        patterns=_rx(
            r"\bECONNRESET\b",
            r"\bENOTFOUND\b",
            r"\bEAI_AGAIN\b",
            r"\bECONNREFUSED\b",
            r"Could not resolve host",
            r"TLS handshake timeout",
            r"[Cc]onnection refused",
            r"socket hang up",
        ),
        title="A network request from the build failed",
        hint=_HINT_NETWORK,
        priority=55,
        triggers=(
            "ECONNRESET",
            "ENOTFOUND",
            "EAI_AGAIN",
            "ECONNREFUSED",
            "Could not resolve host",
            "TLS handshake timeout",
            "onnection refused",
            "socket hang up",
        ),
    ),
)

_STATUS_TIMED_OUT_RULE: Final = next(r for r in RULES if r.name == "codebuild_timed_out")
_FAILED_STATUSES: Final = frozenset({"FAILED", "FAULT", "TIMED_OUT"})

_ANSI_RE: Final = re.compile(
    r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])"
)
# CodeBuild agent lines and BuildKit step lines; rules look at what follows.
_PREFIX_RE: Final = re.compile(
    r"^(?:\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)? |#\d+ (?:\d+\.\d+ )?)"
)


def strip_ansi(text: str) -> str:
    """Remove terminal colour/cursor escapes; Yarn and Jest colour their output."""
    return _ANSI_RE.sub("", text) if "\x1b" in text else text


def _body(line: str) -> str:
    m = _PREFIX_RE.match(line)
    body = line[m.end() :] if m else line
    # Yarn's "➤ " marker and indentation aren't part of any message.
    return body.lstrip().removeprefix("➤ ")


# Rough per-character frequency (%) in build output. The regex engine skips ahead using the set
# of first characters of the prefilter, so each trigger is scanned for from its rarest character
# on: a prefilter of keys like "xec format error" and "JavaScript heap" stops at few positions.
# Hex digits (hashes) and p/b (npm, package, peer, build) are commoner in logs than in prose.
_LETTER_FREQ: Final[dict[str, float]] = {
    "e": 12, "t": 9, "a": 8, "o": 7.5, "i": 7, "n": 6.7, "s": 6.3, "h": 6, "r": 6, "d": 4.3,
    "l": 4, "c": 2.8, "u": 2.8, "m": 2.4, "w": 2.4, "p": 3, "b": 2.5, "f": 2.2, "g": 2, "y": 2,
    "v": 1, "k": 0.8, "j": 0.15, "x": 0.15, "q": 0.1, "z": 0.07,
}  # fmt: skip
_COMMON_UPPER: Final = frozenset("CRYNTSWIAEFP")


def _frequency(ch: str) -> float:
    if ch in _LETTER_FREQ:
        return _LETTER_FREQ[ch]
    if ch.isupper():
        return 0.3 if ch in _COMMON_UPPER else 0.05
    if ch.isdigit():
        return 1.5
    return 15.0 if ch.isspace() else 0.5


def _scan_key(trigger: str) -> str:
    """The part of a trigger to scan for: its tail from the rarest character on.

    Short tails are penalised because they match more often, but a rare pair such as "TS" in
    "error TS" still beats starting at a common letter.
    """
    if len(trigger) <= 2:
        return trigger

    def cost(i: int) -> tuple[float, int]:
        return (_frequency(trigger[i]) * (1 if len(trigger) - i >= 5 else 4), i)

    return trigger[min(range(len(trigger) - 1), key=cost) :]


_Trie = dict[str, "_Trie"]


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation shaped as a trie, so the engine tests each character once per position."""
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        if "" in node:
            return ""  # a shorter key already matches; longer ones add nothing to a prefilter
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root)


def _prefilter(rules: Sequence[FailureRule]) -> re.Pattern[str]:
    return re.compile(_trie_regex({_scan_key(t) for r in rules for t in r.triggers}))


_PREFILTER: Final = _prefilter(RULES)


@dataclass(frozen=True, slots=True)
class _At:
    """Where a line sits: blob[start:end], inside the scanned window blob[lo:hi]."""

    blob: str
    lo: int
    start: int
    end: int
    hi: int


def _last_lines_start(blob: str, lo: int, hi: int, n: int) -> int:
    """Offset where the last n lines of blob[lo:hi] begin."""
    pos = hi
    for _ in range(n):
        nl = blob.rfind("\n", lo, pos)
        if nl == -1:
            return lo
        pos = nl
    return pos + 1


@dataclass(slots=True)
class _Candidate:
    """A rule hit with the lines around it, still collecting the lines after it."""

    rule: FailureRule
    line_no: int | None
    line: str
    pre: list[tuple[int, str]]
    post: list[tuple[int, str]] = field(default_factory=list)
    post_needed: int = 0
    extras: list[tuple[int, str]] = field(default_factory=list)

    def beats(self, other: _Candidate | None) -> bool:
        """Higher priority wins; at equal priority the later line, nearer the failure, wins."""
        if other is None:
            return True
        if self.rule.priority != other.rule.priority:
            return self.rule.priority > other.rule.priority
        if self.line_no is None:
            return False  # evidence from outside the log never displaces a log line
        return other.line_no is None or self.line_no >= other.line_no


class LogScanner:
    """Streaming classifier: feed it lines in chunks; memory stays bounded by the context size."""

    def __init__(self, *, context_lines: int = 5, rules: Sequence[FailureRule] = RULES) -> None:
        # The excerpt is pre + decisive + post (+ a couple of anchors) and must fit in 30 lines.
        self._ctx = max(0, min(context_lines, (MAX_EXCERPT_LINES - 3) // 2))
        self._rules = tuple(rules)
        self._prefilter = _PREFILTER if rules is RULES else _prefilter(self._rules)
        self._tail: deque[str] = deque(maxlen=max(self._ctx, TAIL_LINES))
        self._count = 0
        self._best: _Candidate | None = None
        self._pending: dict[str, _Candidate] = {}  # weak rule name -> last unconfirmed hit
        self._armed: dict[str, tuple[int, str]] = {}  # stateful rule name -> arming line
        self._open: list[_Candidate] = []  # candidates still collecting post-context
        self._carry = ""  # a partial last line between feed_text() calls

    def feed(self, lines: Iterable[str]) -> None:
        """Consume more log lines (with or without trailing newlines); one item is one line."""
        self.finish_text()  # keep order if a caller mixes feed_text() and feed()
        it = iter(lines)
        while batch := list(islice(it, _BATCH_LINES)):
            blob = "\n".join(batch)
            if blob.count("\n") != len(batch) - 1:
                # Some items carried their own newline; one item is one line, whatever it holds.
                blob = "\n".join(ln.rstrip("\r\n").replace("\n", " ") for ln in batch)
            self._feed_blob(blob)

    def feed_text(self, text: str) -> None:
        """Consume raw log text in chunks of any size; a line may span chunks.

        The fast path for files and streams: lines are scanned in place inside the chunk, never
        split into a list or copied. finding() flushes a last line without a newline.
        """
        cut = text.rfind("\n")
        if cut == -1:
            self._carry += text
            return
        lo = 0
        if self._carry:
            # Finish the line that straddles the previous chunk, then scan the rest in place.
            first = text.find("\n")
            self._feed_blob(self._carry + text[:first])
            lo = first + 1
        self._carry = text[cut + 1 :]
        if lo <= cut:
            self._feed_blob(text, lo, cut)

    def finish_text(self) -> None:
        """Flush a last line that had no trailing newline."""
        if self._carry:
            carry, self._carry = self._carry, ""
            self._feed_blob(carry)

    def _feed_blob(self, blob: str, lo: int = 0, hi: int | None = None) -> None:
        """Scan the complete lines in blob[lo:hi], joined by "\n" (hi is a newline or the end)."""
        if hi is None:
            hi = len(blob)
        if self._open:
            self._fill_post(blob, lo, hi)
        search = self._prefilter.search
        m = search(blob, lo, hi)
        idx, pos = 0, lo
        while m is not None:
            idx += blob.count("\n", pos, m.start())
            start = blob.rfind("\n", lo, m.start()) + 1 or lo
            end = blob.find("\n", m.start(), hi)
            if end == -1:
                end = hi
            self._examine(blob, lo, start, end, hi, self._count + idx + 1)
            # One look per line: resume the scan at the start of the next line.
            pos = end
            m = search(blob, end + 1, hi) if end < hi else None
        tail_from = _last_lines_start(blob, lo, hi, self._tail.maxlen or 0)
        self._tail.extend(blob[tail_from:hi].split("\n"))
        self._count += blob.count("\n", pos, hi) + idx + 1

    def _context_before(
        self, blob: str, lo: int, start: int, line_no: int
    ) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        while len(out) < self._ctx and start > lo:
            prev = blob.rfind("\n", lo, start - 1) + 1 or lo
            out.append((line_no - len(out) - 1, blob[prev : start - 1]))
            start = prev
        missing = self._ctx - len(out)
        if missing and self._tail:
            # The rest comes from lines of earlier feeds, still in the tail ring.
            first = line_no - len(out)
            tail = list(self._tail)[-missing:]
            out.extend((first - len(tail) + i, t) for i, t in reversed(list(enumerate(tail))))
        out.reverse()
        return out

    def _context_after(
        self, blob: str, end: int, hi: int, line_no: int, need: int
    ) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        while len(out) < need and end < hi:
            nxt = blob.find("\n", end + 1, hi)
            if nxt == -1:
                nxt = hi
            out.append((line_no + len(out) + 1, blob[end + 1 : nxt]))
            end = nxt
        return out

    def _fill_post(self, blob: str, lo: int, hi: int) -> None:
        need = max(c.post_needed for c in self._open)
        head = [t for _, t in self._context_after(blob, lo - 1, hi, 0, need)]
        first_no = self._count + 1
        still_open = []
        for cand in self._open:
            take = head[: cand.post_needed]
            cand.post.extend((first_no + i, t) for i, t in enumerate(take))
            cand.post_needed -= len(take)
            if cand.post_needed > 0:
                still_open.append(cand)
        self._open = still_open

    def _examine(self, blob: str, lo: int, start: int, end: int, hi: int, line_no: int) -> None:
        # Colour codes are stripped here, not from the whole stream: they rarely split a keyword
        # and stripping every batch would halve throughput. Context lines are cleaned on output.
        line = strip_ansi(blob[start:end])
        body = _body(line)
        at = _At(blob, lo, start, end, hi)
        for rule in self._rules:
            if not any(t in body for t in rule.triggers):
                continue
            if rule.is_stateful:
                self._step_stateful(rule, body, line, line_no, at)
                continue
            if rule.confirm and rule.name in self._pending and _any_match(rule.confirm, body):
                self._promote(self._pending.pop(rule.name), (line_no, line))
            if _any_match(rule.patterns, body):
                cand = self._candidate(rule, line, line_no, at)
                if rule.is_weak:
                    self._pending[rule.name] = cand
                else:
                    self._offer(cand)

    def _step_stateful(
        self, rule: FailureRule, body: str, line: str, line_no: int, at: _At
    ) -> None:
        if _any_match(rule.armed_by, body):
            self._armed[rule.name] = (line_no, line)
        elif rule.name in self._armed:
            if _any_match(rule.disarmed_by, body):
                del self._armed[rule.name]
            elif _any_match(rule.patterns, body):
                anchor = self._armed.pop(rule.name)
                cand = self._candidate(rule, line, line_no, at)
                cand.extras.append(anchor)
                self._offer(cand)

    def _candidate(self, rule: FailureRule, line: str, line_no: int, at: _At) -> _Candidate:
        cand = _Candidate(
            rule, line_no, line, self._context_before(at.blob, at.lo, at.start, line_no)
        )
        cand.post = self._context_after(at.blob, at.end, at.hi, line_no, self._ctx)
        cand.post_needed = self._ctx - len(cand.post)
        if cand.post_needed > 0:
            self._open.append(cand)
        return cand

    def _promote(self, cand: _Candidate, confirmed_by: tuple[int, str] | None) -> None:
        if confirmed_by is not None:
            cand.extras.append(confirmed_by)
        self._offer(cand)

    def _offer(self, cand: _Candidate) -> None:
        if cand.beats(self._best):
            self._best = cand

    def finding(
        self, *, phase_context: str | None = None, build_status: str | None = None
    ) -> Finding:
        """The decisive cause so far, also weighing CodeBuild's phase context and build status."""
        self.finish_text()
        best = self._best
        status = (build_status or "").strip().upper()
        failed = status in _FAILED_STATUSES or bool(phase_context)
        context = _body(strip_ansi(phase_context or ""))
        for cand in self._pending.values():
            rule = cand.rule
            confirmed = (context and _any_match(rule.confirm, context)) or (
                rule.confirm_on_failed_status and failed
            )
            if confirmed and cand.beats(best):
                best = cand
        if context:
            for rule in self._rules:
                if rule.is_weak or not _any_match(rule.patterns, context):
                    continue
                if rule.is_stateful and rule.name not in self._armed:
                    continue
                cand = _Candidate(rule, None, context, [])
                if rule.is_stateful:
                    cand.extras.append(self._armed[rule.name])
                if cand.beats(best):
                    best = cand
        if status == "TIMED_OUT":
            cand = _Candidate(_STATUS_TIMED_OUT_RULE, None, "", [])
            if cand.beats(best):
                best = cand
        if best is None:
            return self._unknown()
        return self._render(best)

    def _tail_lines(self) -> list[tuple[int, str]]:
        tail = list(self._tail)[-TAIL_LINES:]
        first = self._count - len(tail) + 1
        return [(first + i, t) for i, t in enumerate(tail)]

    def _unknown(self) -> Finding:
        lines = self._tail_lines()
        return Finding(
            category=FailureCategory.UNKNOWN,
            rule=None,
            title="No known cause found in the log",
            hint=_HINT_UNKNOWN,
            excerpt=[_clean(t) for _, t in lines],
            line_numbers=[n for n, _ in lines],
            decisive_line=None,
        )

    def _render(self, cand: _Candidate) -> Finding:
        if cand.line_no is None:
            # Known only from outside the log: show how the log ended, plus any anchor lines.
            lines = dict(self._tail_lines())
        else:
            lines = dict(cand.pre)
            lines[cand.line_no] = cand.line
            lines.update(cand.post)
        lines.update(cand.extras)
        numbers = sorted(lines)
        if len(numbers) > MAX_EXCERPT_LINES:
            numbers = _trim_around(numbers, cand.line_no, {n for n, _ in cand.extras})
        return Finding(
            category=cand.rule.category,
            rule=cand.rule.name,
            title=cand.rule.title,
            hint=cand.rule.hint,
            excerpt=[_clean(lines[n]) for n in numbers],
            line_numbers=numbers,
            decisive_line=cand.line_no,
        )


def _clean(line: str) -> str:
    return strip_ansi(line).rstrip("\r")


def _trim_around(numbers: list[int], keep: int | None, anchors: set[int]) -> list[int]:
    """Cut to MAX_EXCERPT_LINES, dropping the lines farthest from the decisive one first."""
    centre = keep if keep is not None else numbers[-1]
    must = anchors | ({keep} if keep is not None else set())
    rest = sorted((n for n in numbers if n not in must), key=lambda n: (abs(n - centre), -n))
    chosen = sorted(must)[-MAX_EXCERPT_LINES:]
    chosen += rest[: MAX_EXCERPT_LINES - len(chosen)]
    return sorted(chosen)


def _any_match(patterns: Sequence[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def classify(
    lines: Iterable[str], *, phase_context: str | None = None, build_status: str | None = None
) -> Finding:
    """Classify a whole log at once; the convenience form of LogScanner."""
    scanner = LogScanner()
    scanner.feed(lines)
    return scanner.finding(phase_context=phase_context, build_status=build_status)
