"""The ``rnn-jax`` command line. Subcommands are the modules of ``rnn_jax._src.commands``.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``main(args) -> int``; adding a command means adding a module, nothing here changes. Misuse
(a bad option value, a missing file, a missing optional package) is one line on stderr and
exit status 2, never a traceback (:mod:`rnn_jax._src.commands._args`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

from rnn_jax._src import commands
from rnn_jax._src.commands._args import UsageError


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, where it has one (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or isinstance(action.default, bool):
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line: ``rnn-jax train: error: argument --steps: ...``."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnn-jax", description="Recurrent networks in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP,
                           formatter_class=_Defaults)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


# Optional packages and the extra of pyproject.toml that installs each.
EXTRAS = {"matplotlib": "plot", "flax": "train", "tqdm": "train", "torch": "bench",
          "equinox": "bench"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except UsageError as err:
        print(f"rnn-jax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nrnn-jax {args.command}: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as err:
        extra = EXTRAS.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"rnn-jax {args.command}: needs the optional package {err.name!r}; "
              f"install it with: pip install 'rnn-jax[{extra}]'", file=sys.stderr)
        return 2
