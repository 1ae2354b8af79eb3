"""`conda torch-env lock`. TODO: implement."""

from __future__ import annotations

import argparse

HELP = "lock (not implemented yet)"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    pass


def execute(args: argparse.Namespace) -> int:
    raise NotImplementedError("lock")
