"""`conda torch-env detect`. TODO: implement."""

from __future__ import annotations

import argparse

HELP = "detect (not implemented yet)"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    pass


def execute(args: argparse.Namespace) -> int:
    raise NotImplementedError("detect")
