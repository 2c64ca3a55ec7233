"""Secrets never leave in a log excerpt."""

from __future__ import annotations

import pytest

from bot.redaction import MASK, redact, secret_env_values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key=AKIAIOSFODNN7EXAMPLE used", f"key={MASK} used"),
        ("temp ASIAY34FZKBOKMUTVV7A here", f"temp {MASK} here"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key = {MASK}",
        ),
        (
            'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
            f'AWS_SECRET_ACCESS_KEY="{MASK}"',
        ),
        ("token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", f"token {MASK}"),
        ("user xoxp-1234-5678-9012-abcdef0123456789", f"user {MASK}"),
        ("app xapp-1-A0123456789-1234567890123-abc123def456", f"app {MASK}"),
        ("legacy xoxa-2-1234567890-abcdefgh", f"legacy {MASK}"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG",
            f"Authorization: Bearer {MASK}",
        ),
        ("curl -H 'authorization: token ghp_abc' x", f"curl -H 'authorization: token {MASK} x"),
        ("sent bearer abcdefgh12345678 to api", f"sent bearer {MASK} to api"),
        (
            "https://deploy:s3cr3t-P4ss@git.example.com/repo.git",
            f"https://deploy:{MASK}@git.example.com/repo.git",
        ),
        (
            "//registry.npmjs.org/:_authToken=npm_AbCdEf0123456789",
            f"//registry.npmjs.org/:_authToken={MASK}",
        ),
        ('npmAuthToken: "npm_AbCdEf0123456789"', f'npmAuthToken: "{MASK}"'),
        ("GITHUB_TOKEN is ghp_16C7e42F292c6912E7710c838347Ae178B4a", f"GITHUB_TOKEN is {MASK}"),
        ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", f"pat {MASK}"),
    ],
)
def test_known_secret_shapes_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "https://registry.yarnpkg.com/react/-/react-18.3.1.tgz",
        "[Container] 2024/05/01 12:00:00.123456 Running command yarn build",
        "exit status 137",
        "➤ YN0013: │ error-ex@npm:1.3.2 can't be found in the cache",
        "postgres://db.internal:5432/app",
        "AKIA is a prefix, not a key",
    ],
)
def test_ordinary_log_lines_are_untouched(text: str) -> None:
    assert redact(text) == text


def test_given_secret_values_are_masked_longest_first() -> None:
    text = "using hunter2-and-more and hunter2 and abc"

    assert redact(text, secret_values=["hunter2", "hunter2-and-more", "abc"]) == (
        f"using {MASK} and {MASK} and abc"
    )


def test_secret_env_values_picks_secret_looking_names() -> None:
    env = {
        "NPM_TOKEN": "npm_AbCdEf0123",
        "DB_PASSWORD": "hunter22",
        "SENTRY_API_KEY": "0123456789abcdef",
        "APIKEY": "abcd1234",
        "STRIPE_SECRET": "sk_live_abc",
        "GPG_PRIVATE": "-----BEGIN",
        "AWS_CREDENTIALS": "profile-x",
        "LDAP_PASSWD": "p4ssw0rd",
        "SHORT_TOKEN": "abc",
        "NODE_ENV": "production",
        "IMAGE_TAG": "v1.2.3",
    }

    assert sorted(secret_env_values(env)) == sorted(
        [
            "npm_AbCdEf0123",
            "hunter22",
            "0123456789abcdef",
            "abcd1234",
            "sk_live_abc",
            "-----BEGIN",
            "profile-x",
            "p4ssw0rd",
        ]
    )


def test_env_values_then_redact() -> None:
    env = {"DB_PASSWORD": "correct-horse-battery", "NODE_ENV": "production"}

    out = redact(
        "connecting with correct-horse-battery in production",
        secret_values=secret_env_values(env),
    )

    assert out == f"connecting with {MASK} in production"


def test_private_key_body_is_masked() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"

    assert redact(pem) == f"-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----"
