"""One module per ``ncbackup`` subcommand; each has ``add_parser(subparsers)`` and ``main(args) -> int``."""
