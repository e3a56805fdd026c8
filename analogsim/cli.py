"""Command line: analogsim run | plot | report | align | devices | data.

Every user error is one line per problem on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import yaml

from analogsim.errors import AnalogsimError, error_lines

Handler = Callable[[argparse.Namespace], int]


def _devices(args: argparse.Namespace) -> int:
    from analogsim.config.profile import DeviceProfile, load_profile, shipped_profiles

    if args.devices_cmd is None:
        args.devices_parser.print_help()
        return 0
    if args.devices_cmd == "list":
        for name in shipped_profiles():
            p = load_profile(name)
            first = p.description.strip().split(". ")[0].replace("\n", " ")
            print(f"{name:<15} {first}")
        return 0
    if args.devices_cmd == "show":
        p = load_profile(args.name)
        print(yaml.safe_dump(p.model_dump(), sort_keys=False), end="")
        return 0
    failed = 0
    for f in args.files:
        try:
            p: DeviceProfile = load_profile(f)
        except AnalogsimError as err:
            print(error_lines(err), file=sys.stderr)
            failed += 1
        else:
            print(f"{f}: ok ({p.name})")
    return 2 if failed else 0


class _HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: …)" to an option's help unless the help already names its default,
    or the default is unset (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose sub-command parsers (of every level) show defaults."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _version() -> str:
    from analogsim import __version__

    return f"analogsim {__version__}"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="analogsim", description=__doc__.splitlines()[0],
                    epilog="Run analogsim COMMAND --help for the options of each command.")
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("devices", help="list, show and validate device profiles",
                         description="List, show and validate device profiles.")
    dsub = dev.add_subparsers(dest="devices_cmd", metavar="{list,show,validate}")
    dev.set_defaults(devices_parser=dev)
    dsub.add_parser("list", help="shipped profiles")
    show = dsub.add_parser("show", help="print a profile with every default filled in")
    show.add_argument("name", help="shipped profile name or YAML path")
    val = dsub.add_parser("validate", help="validate profile files")
    val.add_argument("files", nargs="+", help="profile YAML files")
    dev.set_defaults(handler=_devices)

    for register in _registrations():
        register(sub)
    return parser


def _registrations() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Sub-commands defined next to what they drive (each module's ``register``)."""
    regs = []
    for mod in ("analogsim.data.cli", "analogsim.runner.cli", "analogsim.rules.cli",
                "analogsim.report.cli"):
        try:
            module = __import__(mod, fromlist=["register"])
        except ModuleNotFoundError as err:
            if err.name != mod:
                raise
            continue
        regs.append(module.register)
    return regs


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except AnalogsimError as err:
        print(error_lines(err), file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped (``| head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MemoryError:
        print("error: out of memory: the scenario or profile asks for more than this machine "
              "has (model widths, dataset sizes, batch sizes)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
