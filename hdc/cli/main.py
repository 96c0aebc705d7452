"""Entry point of the ``hdc`` command.

Each subcommand lives in its own module ``hdc.cli.<name>`` with ``add_parser(subparsers)``,
which registers its parser and sets ``func=run`` (``run(args) -> int`` exit status).
"""
import argparse
import importlib
import sys

SUBCOMMANDS = ("info", "demo", "bench", "train", "compare", "experiment")
# modules that define more than one subcommand
_MODULE_OF = {"compare": "train"}


def build_parser():
    parser = argparse.ArgumentParser(prog="hdc", description="Hyperdimensional computing on bit-packed binary hypervectors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = set()
    for name in SUBCOMMANDS:
        module_name = _MODULE_OF.get(name, name)
        if module_name in registered:
            continue
        registered.add(module_name)
        importlib.import_module(f"hdc.cli.{module_name}").add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"hdc {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
