"""Write tests/file_seconds.json, each test file's seconds in a suite run, from that run's JUnit XML:

    bash scripts/test.sh --junitxml=/tmp/suite.xml && .venv/bin/python scripts/dev/test_file_seconds.py /tmp/suite.xml

conftest.py hands the files to the pytest-xdist workers longest first (the longest-processing-time rule), so that
no long file starts last while the other worker sits idle. Only the order comes from these figures; a file
missing from them is scheduled first (it may be long), a stale figure costs at most some idle time at the end."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def file_seconds(junit_xml: str) -> dict[str, float]:
    """{'tests/cli/test_x.py': seconds (setup, call and teardown of its tests, module fixtures included)}."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        parts = case.get("classname", "").split(".")  # module[.Class]: the longest prefix that is a file
        while parts and not (ROOT / ("/".join(parts) + ".py")).is_file():
            parts.pop()
        seconds["/".join(parts) + ".py"] += float(case.get("time", 0.0))
    return dict(sorted(((k, round(v, 1)) for k, v in seconds.items()), key=lambda kv: -kv[1]))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: test_file_seconds.py SUITE_JUNIT_XML", file=sys.stderr)
        return 2
    out = ROOT / "tests" / "file_seconds.json"
    figures = file_seconds(argv[0])
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"{out.relative_to(ROOT)}: {len(figures)} files, {sum(figures.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
