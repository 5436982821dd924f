#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Holds a batch report (JSON or CSV) to what the folder of make_images.sh must give.

  check_report.py REPORT SIZES_BEFORE SIZES_AFTER first|second
SIZES_* are "path size" lines (stat before and after the run). Every image's sizes must equal stat's; on the
first run each kind of image has its outcome and reason, on the second nothing is compacted and the images
the first run compacted say there is nothing to gain.
"""
import csv
import json
import os
import sys


def load(path):
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        return [{"Path": r["path"], "Format": r["format"], "SizeBefore": int(r["size_before"]),
                 "SizeAfter": int(r["size_after"]), "BytesReleased": int(r["bytes_released"]),
                 "Outcome": r["outcome"], "Reason": r["reason"], "ReturnCode": int(r["return_code"])} for r in rows]
    with open(path) as f:
        return json.load(f)["Images"]


def sizes(path):
    out = {}
    with open(path) as f:
        for line in f:
            p, s = line.rsplit(" ", 1)
            out[p] = int(s)
    return out


def expected_first(name, path):
    if "/link.vhd" in path:
        return "skipped", "outside the tree"
    if "/damaged/" in path:
        return "failed", "checksum"
    if "/held/" in path:
        return "in use", "qemu-io"
    if "/fixed/" in path:
        return "skipped", "fixed"
    if name.startswith("small-"):
        return "skipped", "below --min-size"
    if name.startswith("lowgain-"):
        return "skipped", "below --min-gain"
    if name.startswith("base-"):
        return "skipped", "parent of the differencing disk"
    return "compacted", ""


def main():
    report, before_f, after_f, which = sys.argv[1:5]
    images = load(report)
    before, after = sizes(before_f), sizes(after_f)
    problems = []
    seen = set()
    for im in images:
        p, name = im["Path"], os.path.basename(im["Path"])
        seen.add(p)
        if p in before:
            if im["SizeBefore"] != before[p] or im["SizeAfter"] != after[p]:
                problems.append(f"{p}: report {im['SizeBefore']} -> {im['SizeAfter']}, stat {before[p]} -> {after[p]}")
            if im["BytesReleased"] != im["SizeBefore"] - im["SizeAfter"]:
                problems.append(f"{p}: BytesReleased {im['BytesReleased']} is not before - after")
        elif "/link.vhd" not in p:
            problems.append(f"{p}: in the report but not in the folder")
        want, why = expected_first(name, p)
        if which == "second" and (want == "compacted" or name.startswith("small-")):
            want, why = "skipped", "nothing to gain"
        if im["Outcome"] != want or why not in im["Reason"]:
            problems.append(f"{p}: {im['Outcome']} ({im['Reason']}), expected {want} ({why})")
        if want == "compacted" and not im["SizeAfter"] < im["SizeBefore"]:
            problems.append(f"{p}: compacted but not smaller")
        if want == "failed" and im["ReturnCode"] != 32768:
            problems.append(f"{p}: failed with {im['ReturnCode']}, expected 32768")
        if want == "in use" and im["ReturnCode"] != 32774:
            problems.append(f"{p}: in use with {im['ReturnCode']}, expected 32774")
    for p in before:
        if p not in seen and not p.endswith("notes.txt"):
            problems.append(f"{p}: in the folder but not in the report")
    if any(p.endswith("notes.txt") for p in seen):
        problems.append("notes.txt (not an image) is in the report")
    counts = {}
    for im in images:
        counts[im["Outcome"]] = counts.get(im["Outcome"], 0) + 1
    print(f"{report}: {len(images)} images, {counts}")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
