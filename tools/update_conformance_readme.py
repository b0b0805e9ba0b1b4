#!/usr/bin/env python3
"""Rewrites the conformance table in README.md from `ferry-conformance` output on stdin.

Usage: .build/debug/ferry-conformance | python3 tools/update_conformance_readme.py
"""
import re
import sys

rows = [line for line in sys.stdin.read().splitlines() if line.startswith("|")]
table = "\n".join(rows)
readme = open("README.md").read()
new = re.sub(r"(<!-- conformance-counts -->\n).*?(\n<!-- /conformance-counts -->)",
             lambda m: m.group(1) + table + m.group(2), readme, flags=re.S)
open("README.md", "w").write(new)
print(table)
