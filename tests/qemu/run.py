#!/usr/bin/env python3
"""Runs every tests/qemu/test_*.py (stdlib unittest) and ends with one summary line,
`qemu: N passed, N failed`, that CI reads. Exit status 1 if anything failed."""
import sys
import unittest
from pathlib import Path

here = Path(__file__).resolve().parent
suite = unittest.defaultTestLoader.discover(str(here), pattern="test_*.py", top_level_dir=str(here))
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
passed = result.testsRun - failed - len(result.skipped)
print(f"qemu: {passed} passed, {failed} failed" + (f", {len(result.skipped)} skipped" if result.skipped else ""))
sys.exit(1 if failed else 0)
