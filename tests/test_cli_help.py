"""Every option of every ``omnivad`` subcommand has help text, and the help shows defaults."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from omnivad.cli import build_parser, main


def _parsers(p: argparse.ArgumentParser, name: str = "omnivad") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_of_every_subcommand_has_help() -> None:
    missing = []
    names = []
    for name, p in _parsers(build_parser()):
        names.append(name)
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not a.help or a.help == argparse.SUPPRESS:
                missing.append(f"{name}: {'/'.join(a.option_strings) or a.dest}")
    assert not missing, "options without help:\n" + "\n".join(missing)
    for cmd in ("run", "tune", "uvad", "zxvad", "extract", "retrain", "corpus import", "benchmark build", "evaluate",
                "plot", "runs ls", "runs compare", "config show"):
        assert f"omnivad {cmd}" in names


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["plot", "--help"])
    out = capsys.readouterr().out
    assert "(default: 12)" in out  # --max-videos
    with pytest.raises(SystemExit):
        main(["benchmark", "build", "--help"])
    assert "preview" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("omnivad ")


def test_config_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "train"]) == 0
    out = capsys.readouterr().out
    assert "train.lr" in out and "default 5e-05" in out
    assert "tracking.backend" not in out
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "tracking.backend" in out and "tensorboard" in out
    assert main(["config", "show", "nope"]) == 1
    assert "no section 'nope'" in capsys.readouterr().err
