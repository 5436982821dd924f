#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Holds src/ to the layer table of ARCHITECTURE.md.

Reads the table (room -> rooms it may include), then every #include "room/..." under src/, and fails when a
room includes one it may not (a lower layer reaching up). Also: no CMakeLists.txt under src/ compiles a
source outside its own folder or changes a target another folder defines, and the libraries the rooms
link form no cycle.

--inject FILE:HEADER pretends FILE also includes HEADER (the test proves with it that a violation fails).
"""
import argparse
import pathlib
import re
import sys

ROW = re.compile(r"^\|\s*`src/([a-z_/]+)/`\s*\|[^|]*\|([^|]*)\|\s*$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+(?:/testing)?)/[^"]+"', re.M)
TARGET_CMD = re.compile(r"\b(add_library|add_executable)\s*\(\s*([A-Za-z0-9_]+)([^)]*)\)", re.S)
EDIT_CMD = re.compile(r"\b(target_link_libraries|target_include_directories|target_compile_definitions|"
                      r"target_compile_options|target_sources|set_target_properties)\s*\(\s*([A-Za-z0-9_]+)([^)]*)\)",
                      re.S)


def layer_table(arch: pathlib.Path):
    rooms = {}
    for line in arch.read_text().splitlines():
        m = ROW.match(line)
        if m:
            allowed = set(re.findall(r"`([a-z_/]+)`", m.group(2)))
            rooms[m.group(1)] = allowed
    return rooms


def room_of(path: pathlib.Path, src: pathlib.Path, rooms):
    rel = path.relative_to(src).parts
    if len(rel) >= 3 and "/".join(rel[:2]) in rooms:
        return "/".join(rel[:2])
    return rel[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--inject", action="append", default=[])
    args = ap.parse_args()
    root = pathlib.Path(args.root)
    src = root / "src"
    rooms = layer_table(root / "ARCHITECTURE.md")
    problems = []
    if not rooms:
        problems.append("ARCHITECTURE.md has no layer table rows of the form | `src/room/` | job | may include |")

    injected = {}
    for spec in args.inject:
        f, h = spec.split(":", 1)
        injected.setdefault((root / f).resolve(), []).append(h)

    folders = {p.parent for p in src.rglob("*") if p.suffix in (".h", ".cpp")}
    for folder in sorted(folders):
        room = room_of(folder / "x.h", src, rooms)
        if room not in rooms:
            problems.append(f"src/{folder.relative_to(src)}: a folder ARCHITECTURE.md's layer table does not name")

    for path in sorted(p for p in src.rglob("*") if p.suffix in (".h", ".cpp")):
        room = room_of(path, src, rooms)
        if room not in rooms:
            continue
        allowed = rooms[room] | {room}
        text = path.read_text(errors="replace")
        included = INCLUDE.findall(text) + [h.split("/")[0] if not h.startswith("io/testing/") else "io/testing"
                                            for h in injected.get(path.resolve(), [])]
        for target in included:
            if target not in rooms:
                continue  # a system or third-party header
            if target not in allowed:
                problems.append(f"{path.relative_to(root)}: includes {target}/, but {room} may include only "
                                f"{', '.join(sorted(allowed)) or 'itself'} (ARCHITECTURE.md's layer table)")

    # CMake: sources from the own folder only; no edits of another folder's targets; no library cycles.
    defined = {}
    links = {}
    for cm in sorted(src.rglob("CMakeLists.txt")):
        text = re.sub(r"#.*", "", cm.read_text())
        for _, name, rest in TARGET_CMD.findall(text):
            defined[name] = cm
            for word in rest.split():
                if "PROJECT_SOURCE_DIR" in word or "CMAKE_SOURCE_DIR" in word or word.startswith("../"):
                    problems.append(f"{cm.relative_to(root)}: {name} compiles {word}, outside its folder")
    for cm in sorted(src.rglob("CMakeLists.txt")):
        text = re.sub(r"#.*", "", cm.read_text())
        for cmd, name, rest in EDIT_CMD.findall(text):
            if defined.get(name) != cm:
                problems.append(f"{cm.relative_to(root)}: {cmd}({name} ...) changes a target defined in "
                                f"{defined[name].relative_to(root) if name in defined else 'no file under src/'}")
            if cmd == "target_link_libraries":
                links.setdefault(name, set()).update(w for w in rest.split() if w.startswith("vhdkit_"))

    state = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(links.get(node, ())):
            if state.get(nxt) == 1:
                problems.append("library cycle: " + " -> ".join(stack + [node, nxt]))
            elif nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in sorted(links):
        if node not in state:
            visit(node, [])

    for p in problems:
        print(p)
    print(f"{len(problems)} layer problem(s); {len(rooms)} rooms in the table")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
