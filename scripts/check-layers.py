#!/usr/bin/env python3
"""The server's modules import only modules below them.

Data flows one way through pm-server: transport -> commands -> writer -> store + hub (and,
when servers share PostgreSQL, store -> follow -> hub; presence: transport -> presence -> hub).
This check
reads every `crate::<module>` reference in server/src (test code excluded: a test may drive a
module from above) and fails when a top-level module refers to one that is not below it in LAYERS.
Modules on the same line may not refer to each other either.

    python3 scripts/check-layers.py          # exit 1 and a line per violation when broken
"""
import os
import re
import sys

# Top to bottom. A module may use any module on a later line.
LAYERS = [
    ["app", "idle", "testing", "main", "lib", "logging"],
    ["transport"],
    ["commands"],
    ["sync"],
    ["reads"],
    ["writer"],
    ["follow"],
    ["presence"],
    ["hub"],
    ["access"],
    ["store"],
    ["frames", "ids", "auth", "discovery"],
    ["config", "error"],
    ["public_key", "metrics"],
]


def main() -> int:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server", "src")
    level = {m: i for i, line in enumerate(LAYERS) for m in line}
    problems = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs") or name == "tests.rs":
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            top = rel.split(os.sep)[0].removesuffix(".rs")
            if top not in level:
                problems.append(f"{rel}: module `{top}` is not in LAYERS (scripts/check-layers.py)")
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            # Unit tests live at the end of a file, behind #[cfg(test)].
            text = re.split(r"#\[cfg\(test\)\]\s*mod tests", text)[0]
            for number, line in enumerate(text.splitlines(), 1):
                if line.lstrip().startswith("//"):
                    continue
                for used in re.findall(r"crate::([a-z_]+)", line):
                    if used == top or used not in level:
                        continue
                    if level[used] <= level[top]:
                        problems.append(
                            f"{rel}:{number}: `{top}` uses `{used}`, which is not below it"
                        )
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s); the order is in scripts/check-layers.py")
        return 1
    print("server/src: every module uses only modules below it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
