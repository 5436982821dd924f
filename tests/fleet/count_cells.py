#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts the cells of a `vhdkit map --svg` picture per state and holds them to `vhdkit map --json`.

  count_cells.py SVG MAP_JSON BLOCK_SIZE VIRTUAL_SIZE [--expect-unused]
Each block's state comes from the extents that touch it (data > parent > zero > unallocated, the picture's
rule); the picture's "unused" cells are data cells no file system uses, so data = data + unused.
"""
import json
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def main():
    svg_path, map_path, block, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    expect_unused = "--expect-unused" in sys.argv
    root = ET.parse(svg_path).getroot()
    cells = {}
    group = next(g for g in root.iter(NS + "g") if g.get("id") == "cells")
    for r in group.iter(NS + "rect"):
        cells[r.get("class")] = cells.get(r.get("class"), 0) + int(r.get("data-cells"))
    rank = {"data": 4, "parent": 3, "zero": 2, "unallocated": 0}
    n = (size + block - 1) // block
    state = [None] * n
    for e in json.load(open(map_path)):
        s = ("parent" if e["depth"] > 0 else "data") if e["data"] else ("unallocated" if not e["present"]
                                                                           else ("zero" if e["zero"] else "unallocated"))
        for c in range(e["start"] // block, (e["start"] + e["length"] - 1) // block + 1):
            if state[c] is None or rank[s] > rank[state[c]]:
                state[c] = s
    want = {}
    for s in state:
        want[s or "unallocated"] = want.get(s or "unallocated", 0) + 1
    got = dict(cells)
    got["data"] = got.get("data", 0) + got.pop("unused", 0)
    print(f"{svg_path}: {n} blocks; picture {cells}; map {want}")
    if {k: v for k, v in got.items() if v} != want:
        print("PROBLEM: the picture's cells differ from the map's blocks")
        return 1
    if expect_unused and not cells.get("unused"):
        print("PROBLEM: no cell marked unused by the file system")
        return 1
    if sum(cells.values()) != n:
        print("PROBLEM: cells drawn differ from the block count")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
