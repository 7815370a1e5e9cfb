"""``semid``: the headless command line over the core.

Each area registers its sub-commands from its own module (``register(subparsers)``), so the
project, generative and search commands grow independently. Every command returns an exit
code; user-facing errors (``SemidError``) print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys

from .. import __version__
from ..core.errors import SemidError
from ..core.events import Cancelled

#: OSError numbers that mean "cannot write there" (printed as one line, not a traceback)
_DISK_ERRORS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT}

#: modules that contribute sub-commands, in the order they appear in --help
COMMAND_MODULES = [
    "semid_studio.cli.project_commands",
    "semid_studio.cli.generative_commands",
    "semid_studio.cli.search_commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semid",
        description="SemID Studio: Semantic IDs for generative retrieval, from the command line.",
    )
    parser.add_argument("--version", action="version", version=f"semid {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..core.store import project

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed (semid train --nproc re-runs it)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # who this is, for another process waiting on our writes ("waiting for pid 12 (semid train P)")
    project.CLIENT = " ".join(["semid", *(sys.argv[1:] if argv is None else argv)])[:200]
    if hasattr(signal, "SIGXFSZ"):
        # past a file-size limit (ulimit -f) a write should fail with an error we can report,
        # not kill the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        return int(args.func(args) or 0)
    except SemidError as exc:
        print(f"semid {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Cancelled:
        print(f"semid {args.command}: cancelled; the project is as it was before this step", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"\nsemid {args.command}: interrupted; the project is as it was before this step", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the output went to a reader that stopped early (`semid info P | head`): not an error;
        # point stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno not in _DISK_ERRORS:
            raise
        # a full disk or a read-only folder while writing an output file (export, a model cache)
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"semid {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # python -m semid_studio.cli
    sys.exit(main())
