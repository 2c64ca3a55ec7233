"""Mask secrets in log text before it leaves the build account (Slack, the explain CLI)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

__all__ = ["MASK", "redact", "secret_env_values"]

MASK: Final = "***"

# Values shorter than this would mask ordinary words and digits everywhere in the log.
_MIN_SECRET_LEN: Final = 4

_SECRET_NAME_RE: Final = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE|CREDENTIAL", re.IGNORECASE
)

# Each pattern keeps the label (group "keep") and masks the rest of the match.
_PATTERNS: Final[tuple[re.Pattern[str], ...]] = (
    # AWS access key ids: long-term (AKIA) and temporary (ASIA) ones, plus the other id prefixes.
    re.compile(r"(?P<keep>)\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    # aws_secret_access_key = ..., AWS_SECRET_ACCESS_KEY: "...", "SecretAccessKey": "..."
    re.compile(
        r"(?P<keep>\b(?:aws_?secret_?access_?key|secret_?access_?key|aws_?session_?token)"
        r"[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9/+=]{16,}",
        re.IGNORECASE,
    ),
    # Slack bot/user/app/legacy tokens and webhook secrets.
    re.compile(r"(?P<keep>)\bxox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?P<keep>)\bxapp-\d-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?P<keep>hooks\.slack\.com/services/)[A-Za-z0-9/]+"),
    # GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained.
    re.compile(r"(?P<keep>)\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"(?P<keep>)\bgithub_pat_[A-Za-z0-9_]{20,}"),
    # npm: //registry.npmjs.org/:_authToken=..., npmAuthToken: ..., NPM_TOKEN=...
    re.compile(r"(?P<keep>_auth(?:Token)?\s*=\s*[\"']?)[^\s\"']+"),
    re.compile(r"(?P<keep>npmAuth(?:Token|Ident)\s*:\s*[\"']?)[^\s\"']+"),
    # Authorization headers and bare bearer tokens.
    re.compile(r"(?P<keep>\bAuthorization\s*:\s*(?:Bearer|Basic|token)\s+)\S+", re.IGNORECASE),
    re.compile(r"(?P<keep>\bBearer\s+)[A-Za-z0-9._~+/-]{8,}=*", re.IGNORECASE),
    # Passwords in URLs: scheme://user:password@host keeps the user, masks the password.
    re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)", re.IGNORECASE),
    # PEM private keys printed whole.
    re.compile(
        r"(?P<keep>-----BEGIN [A-Z ]*PRIVATE KEY-----)[\s\S]*?(?=-----END [A-Z ]*PRIVATE KEY-----)"
    ),
)


def _mask(match: re.Match[str]) -> str:
    return match.group("keep") + MASK


def redact(text: str, *, secret_values: Iterable[str] = ()) -> str:
    """Mask known secret shapes and the given secret values in text.

    Exact values go first and longest first, so a secret that contains another is masked whole.
    """
    values = sorted({v for v in secret_values if len(v) >= _MIN_SECRET_LEN}, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def secret_env_values(env_vars: Mapping[str, str]) -> list[str]:
    """Values of build environment variables whose names say they hold a secret."""
    return [
        value
        for name, value in env_vars.items()
        if _SECRET_NAME_RE.search(name) and len(value) >= _MIN_SECRET_LEN
    ]
