"""``analogsim data list | check NAME | download NAME``.

``check`` exits 0 when the set can be loaded and 2, with the one-line instructions, when not.
"""

from __future__ import annotations

import argparse

from analogsim.data.fetch import download
from analogsim.data.registry import names, status
from analogsim.errors import DataError


def _run(args: argparse.Namespace) -> int:
    if args.data_cmd is None:
        args.data_parser.print_help()
        return 0
    if args.data_cmd == "list":
        for name in names():
            print(status(name, args.root)[1])
        return 0
    if args.data_cmd == "check":
        found, line = status(args.name, args.root)
        if not found:
            raise DataError(line)
        print(line)
        return 0
    folder = download(args.name, args.root, base_url=args.base_url, timeout_s=args.timeout,
                      connect_timeout_s=min(args.timeout, 5.0))
    print(f"{args.name}: saved in {folder}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its sub-commands to the main CLI's ``subparsers``."""
    data = subparsers.add_parser(
        "data", help="list, check and download data sets",
        description="The data sets a scenario can name: where each was found on this machine, "
                    "whether it loads, and how to get one that is missing.")
    dsub = data.add_subparsers(dest="data_cmd", metavar="{list,check,download}")
    data.set_defaults(data_parser=data)
    lst = dsub.add_parser("list", help="every set: where it was found, or how to get it")
    lst.add_argument("--root", help="folder searched first for file-based sets")
    chk = dsub.add_parser("check", help="exit 0 if NAME can be loaded, else 2 with instructions")
    chk.add_argument("name", help="data set name (see list)")
    chk.add_argument("--root", help="folder (or archive) searched first")
    dl = dsub.add_parser("download", help="fetch NAME from its official URL into the cache "
                                          "(needs internet access)")
    dl.add_argument("name", help="data set name (see list)")
    dl.add_argument("--root", help="target folder (default ~/.cache/analogsim/NAME)")
    dl.add_argument("--base-url", help="mirror serving the same file names")
    dl.add_argument("--timeout", type=float, default=30.0, help="seconds per network read")
    data.set_defaults(handler=_run)
