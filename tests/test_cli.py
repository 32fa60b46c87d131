"""The command line: every subcommand is discovered, and a missing optional package is named
with the extra that installs it instead of a traceback."""

import pytest

from rnn_jax._src import cli


def test_subcommands_are_discovered():
    names = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert {"demo", "verify", "gradients", "train", "sample", "bench"} <= names


def test_missing_optional_package_names_the_extra(monkeypatch, capsys):
    def needs_matplotlib(args):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(_main=needs_matplotlib)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(_main=needs_matplotlib)
    assert cli.main(["gradients", "--out", "unused"]) == 2
    assert "pip install 'rnn-jax[plot]'" in capsys.readouterr().err


def test_other_import_errors_are_not_hidden(monkeypatch):
    def broken(args):
        raise ModuleNotFoundError("No module named 'nonexistent'", name="nonexistent")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._subparsers._group_actions[0].choices.values():
        action.set_defaults(_main=broken)
    with pytest.raises(ModuleNotFoundError):
        cli.main(["demo"])
