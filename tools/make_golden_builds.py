"""Regenerate tests/fixtures/golden_builds.json (see tests/e2e/golden_cases.py).

    python tools/make_golden_builds.py            # every case
    python tools/make_golden_builds.py --check    # compare, list the cases that changed

Only for a deliberate change of the generated bits: the commit that rewrites the file says
which builds changed and why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.golden_cases import GOLDEN, build_digest, cases


def main() -> int:
    check = "--check" in sys.argv[1:]
    digests = {}
    with tempfile.TemporaryDirectory(prefix="rnnq-golden-") as td:
        for k, case in enumerate(cases()):
            digests[case.name] = build_digest(case, Path(td) / str(k))
            print(f"{case.name}: {digests[case.name][:64]}", file=sys.stderr)
    if check:
        old = json.loads(GOLDEN.read_text())["builds"]
        changed = sorted(k for k in set(old) | set(digests) if old.get(k) != digests.get(k))
        for k in changed:
            print(f"changed: {k}\n  was {old.get(k)}\n  now {digests.get(k)}")
        return 1 if changed else 0
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    GOLDEN.write_text(json.dumps({"made_at_commit": commit, "builds": digests}, indent=1,
                                 sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}: {len(digests)} builds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
