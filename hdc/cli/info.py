"""``hdc info``: versions, backends (and why any is unavailable), SIMD path, threads, CPU.

Paste its output into bug reports. ``hdc info --json`` prints the same as JSON.
"""
import json


def add_parser(subparsers):
    parser = subparsers.add_parser("info", help="print the configuration a bug report needs",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from hdc.info import format_config, show_config
    cfg = show_config(mode="dicts")
    print(json.dumps(cfg, indent=2, default=str) if args.json else format_config(cfg))
    return 0
