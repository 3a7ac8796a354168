"""Command ``check-config``: validate a config file and print it with every default filled in."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from symzoo import config


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="YAML config file")


def main(args: argparse.Namespace) -> None:
    print(json.dumps(config.load(args.config), indent=2))
