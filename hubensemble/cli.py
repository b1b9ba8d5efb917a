"""The `hubensemble` command line: argparse at the edge, one sub-command per stage."""

import argparse
import logging
import os
import sys

from hubensemble import __version__
from hubensemble.errors import HubensembleError


def _quiet_tensorflow():
    # TensorFlow's C++ start-up chatter buries the tool's own output; users who want it can
    # set TF_CPP_MIN_LOG_LEVEL themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- catalogue -----------------------------------------------------------------------------------

def cmd_catalogue_validate(args):
    from hubensemble.catalogue import load_catalogue

    failed = 0
    for path in args.files:
        try:
            specs = load_catalogue(path)
        except HubensembleError as e:
            failed += 1
            print(str(e), file=sys.stderr)
            continue
        print(f"{path}: ok ({len(specs)} modules)")
    if not failed and len(args.files) > 1:
        # Names must also be unique across the files given together.
        from hubensemble.catalogue import load_catalogues
        try:
            load_catalogues(args.files)
        except HubensembleError as e:
            print(str(e), file=sys.stderr)
            return 1
    return 1 if failed else 0


def cmd_catalogue_list(args):
    from hubensemble.catalogue import format_table, load_catalogues

    print(format_table(load_catalogues(args.files)))
    return 0


# --- parser --------------------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(
        prog="hubensemble",
        description="Rank pre-trained image modules by leave-one-out kNN on your data, "
                    "fine-tune the best with a small sweep, and export their greedy ensemble "
                    "as one SavedModel.")
    parser.add_argument("--version", action="version", version=f"hubensemble {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cat = sub.add_parser("catalogue", help="validate or list catalogue YAML files")
    cat_sub = cat.add_subparsers(dest="catalogue_command", metavar="ACTION")
    p = cat_sub.add_parser("validate", help="check catalogue files; exit 1 with file:line "
                                            "errors when one is malformed")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_catalogue_validate)
    p = cat_sub.add_parser("list", help="print the modules of catalogue files as a table")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=cmd_catalogue_list)
    cat.set_defaults(func=lambda args: (cat.print_help(), 2)[1])
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _quiet_tensorflow()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except HubensembleError as e:
        print(f"hubensemble: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hubensemble: interrupted; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
