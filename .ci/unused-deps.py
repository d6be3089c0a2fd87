#!/usr/bin/env python3
"""Fails when a workspace package declares a dependency its code never names.

What cargo-machete does, without installing it: for each package of the workspace and each of
its dependencies (normal, dev and build), the name the code uses for it (`cargo metadata` gives
it after renames and lib names: `md-5` is `md5`) must appear as `name::`, `use name`,
`extern crate name` or `name!` in one of the package's own `.rs` files. A dependency that is
only there for its features (or its linking) is listed in the package's
`[package.metadata.cargo-machete] ignored = [...]`, which cargo-machete reads too.

Usage: python3 .ci/unused-deps.py (from the workspace root; prints what it finds, exit 1 if any).
"""

import json
import os
import re
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None


def ignored_of(manifest_path):
    if tomllib is None:
        return set()
    with open(manifest_path, "rb") as f:
        manifest = tomllib.load(f)
    meta = manifest.get("package", {}).get("metadata", {}).get("cargo-machete", {})
    return set(meta.get("ignored", []))


def sources(package_dir, nested_dirs):
    """The package's own .rs files (not those of packages inside it, not build output)."""
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = [
            d
            for d in dirs
            if d not in ("target", "node_modules", ".git")
            and os.path.join(root, d) not in nested_dirs
        ]
        for name in files:
            if name.endswith(".rs"):
                yield os.path.join(root, name)


def main():
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            check=True,
            capture_output=True,
        ).stdout
    )
    packages = {p["id"]: p for p in metadata["packages"]}
    members = set(metadata["workspace_members"])
    member_dirs = {
        os.path.dirname(packages[m]["manifest_path"]) for m in members
    }
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    unused = []
    for member in sorted(members, key=lambda m: packages[m]["name"]):
        package = packages[member]
        package_dir = os.path.dirname(package["manifest_path"])
        nested = {d for d in member_dirs if d != package_dir and d.startswith(package_dir + os.sep)}
        text = "\n".join(
            open(path, encoding="utf-8", errors="replace").read()
            for path in sources(package_dir, nested)
        )
        ignored = ignored_of(package["manifest_path"])
        for dep in nodes[member]["deps"]:
            crate = dep["name"]  # the extern crate name the code uses
            declared = packages[dep["pkg"]]["name"]
            if declared in ignored or crate in ignored:
                continue
            # The package itself as a dev-dependency (to turn on its own features in tests).
            if dep["pkg"] == member:
                continue
            word = re.escape(crate)
            pattern = rf"(\b{word}::|\buse\s+{word}\b|\bextern\s+crate\s+{word}\b|\b{word}!)"
            if not re.search(pattern, text):
                unused.append(f"{package['name']}: {declared} (as `{crate}`)")
    if unused:
        print("dependencies that no code of their package names:")
        for line in unused:
            print(f"  {line}")
        print(
            "remove them, or list one that is needed for its features in "
            "[package.metadata.cargo-machete] ignored = [...]"
        )
        return 1
    print(f"unused dependencies: none in {len(members)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
