"""``/usr/bin/python3 -m tools.shapes {sample,judge} ...`` -- see tools/shapes/cli.py."""
import sys

from .cli import main

sys.exit(main())
