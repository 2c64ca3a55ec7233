"""`python -m bot explain` reads a log, explains it and masks secrets."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from bot.explain_cli import main

OOM_LOG = """\
[Container] 2024/05/01 12:00:06.345120 Running command yarn build
   Creating an optimized production build ...
FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory
[Container] 2024/05/01 12:03:11.918822 Command did not exit successfully yarn build exit status 137
"""


def write(tmp_path: Path, text: str, name: str = "build.log") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_human_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(write(tmp_path, OOM_LOG))])

    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0] == "The build ran out of memory"
    assert "category: out_of_memory" in out
    assert "NODE_OPTIONS=--max-old-space-size" in out
    assert "> 3 | FATAL ERROR: Reached heap limit" in out
    assert "  4 | [Container]" in out


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(write(tmp_path, OOM_LOG)), "--json"])

    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(payload) == {"category", "title", "hint", "excerpt", "line_numbers"}
    assert payload["category"] == "out_of_memory"
    assert payload["line_numbers"] == [1, 2, 3, 4]
    assert payload["excerpt"][2].startswith("FATAL ERROR")


def test_unknown_cause_still_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(write(tmp_path, "✓ Compiled successfully\nDone in 12.3s.\n")), "--json"])

    payload = json.loads(capsys.readouterr().out)
    assert code == 0
    assert payload["category"] == "unknown"
    assert payload["excerpt"] == ["✓ Compiled successfully", "Done in 12.3s."]


def test_reads_stdin_with_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("step 1\nKilled\n"))

    code = main(["-", "--json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out)["category"] == "out_of_memory"


def test_reads_stdin_without_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("npm ERR! code ERESOLVE\n"))

    assert main([]) == 0
    assert "category: yarn_peer_dependency" in capsys.readouterr().out


def test_excerpt_is_redacted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = (
        "Running command git clone https://ci:s3cr3tpass@git.example.com/shop.git\n"
        "npm ERR! code E401\n"
        "//registry.npmjs.org/:_authToken=npm_AbCdEf0123456789\n"
    )

    main([str(write(tmp_path, log)), "--json"])

    out = capsys.readouterr().out
    assert "s3cr3tpass" not in out
    assert "npm_AbCdEf0123456789" not in out
    assert json.loads(out)["category"] == "registry_auth"


def test_invalid_utf8_is_replaced_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "binary.log"
    path.write_bytes(b"\xff\xfe garbage\nKilled\n")

    assert main([str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category"] == "out_of_memory"


def test_large_file_is_read_in_chunks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise = "".join(f"   webpack chunk {i} emitted 12.3 kB\n" for i in range(120_000))
    path = write(tmp_path, noise + "Killed\n" + noise)

    assert main([str(path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["category"] == "out_of_memory"
    assert 120_001 in payload["line_numbers"]


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(tmp_path / "nope.log")])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "cannot read" in captured.err
    assert "nope.log" in captured.err


def test_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
