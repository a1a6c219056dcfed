"""The ``isp-collab`` command line: it only parses arguments and calls library functions.

Each subcommand lives in its own module with ``register(subparsers)`` that adds its parser and
sets ``func``; a ``CLIError``, a ``ValueError`` (bad input) or an ``OSError`` (missing, existing or
unwritable files, a full disk) becomes one line on stderr and exit code 2; Ctrl-C exits 130 and SIGTERM 143
(:mod:`isp_collab.signals`). Output paths: a command creates at most their last folder
(:func:`require_parent_folder`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from pathlib import Path

from ..signals import Terminated, check_terminated, clear_terminated, exit_code, raise_terminated
from . import bench, export, gather, info, process, train

SUBCOMMANDS = [info, train, bench, gather, process, export]


class CLIError(Exception):
    """Bad input or refused action: printed as one line, exit code 2."""


def require_parent_folder(path: str | os.PathLike, what: str = "output folder") -> None:
    """Refuse an output whose parent folder is missing: the CLI creates at most the last path component.

    A typo (``-o nodir/sub/x.png``) must not silently create a tree of folders. Raises
    FileNotFoundError (missing) or ValueError (a file where the folder should be), naming ``path``.
    """
    parent = Path(path).parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{path}: {parent} is a file, not a folder")
    if not parent.is_dir():
        raise FileNotFoundError(f"{path}: {what} {parent} does not exist")


def build_parser() -> argparse.ArgumentParser:
    """The ``isp-collab`` parser with every subcommand registered (each sets ``func``)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="isp-collab",
        description="Collaborative blind deblurring for camera ISPs: train, export, process, bench.",
    )
    parser.add_argument("--version", action="version", version=f"isp-collab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


# A value that starts like a negative number: "-0.5", "-1e-1", "-1,1,1" (argparse takes only "-1" and "-.5" as
# numbers, and reads the others as unknown options).
_NEGATIVE = re.compile(r"^-\.?\d")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--flag -1e-1`` as ``--flag=-1e-1``, which argparse reads as the flag's value."""
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":  # the end of the options: what follows is taken as it is (a file named -1EV.jpg)
            return out + argv[i:]
        if out and _NEGATIVE.match(token) and out[-1].startswith("--") and out[-1] != "--" and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run ``isp-collab`` on ``argv`` (default ``sys.argv[1:]``); returns the exit status (module docstring)."""
    args = build_parser().parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    # SIGTERM (kill, job schedulers; background jobs ignore SIGINT) cleans up like Ctrl-C: temporary
    # outputs are removed, a training run writes its checkpoint
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if on_main else None
    try:
        code = int(args.func(args) or 0)
        check_terminated()  # a SIGTERM swallowed after the last stack: the work is done, but it still exits 143
        return code
    except BrokenPipeError:  # `isp-collab info | head`: the reader left; quiet, as a command killed by SIGPIPE
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 128 + 13
    except (CLIError, ValueError, OSError) as e:  # OSError: missing, existing, unwritable, disk full
        message = str(e).splitlines()[0] if str(e) else repr(e)
        print(f"isp-collab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(
            f"isp-collab {args.command}: {'terminated' if isinstance(e, Terminated) else 'interrupted'}",
            file=sys.stderr,
        )
        return exit_code(e)
    finally:
        if on_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        clear_terminated()


if __name__ == "__main__":
    sys.exit(main())
