#!/usr/bin/env python3
"""Regenerates test/fuzz/corpus/<fixture>.json from test/fixtures/model/*.json.

Seeds are minified and stripped of what the parser never reads at length (managedFields,
the last-applied annotation, node status noise): short seeds mutate faster. The edge-*.json
seeds are hand-written and left alone.
"""
import glob
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
for path in sorted(glob.glob(os.path.join(here, "..", "fixtures", "model", "*.json"))):
    with open(path, encoding="utf-8") as f:
        obj = json.load(f)
    meta = obj.get("metadata", {})
    meta.pop("managedFields", None)
    meta.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if obj.get("kind") == "Node":
        for key in ("allocatable", "capacity", "conditions", "daemonEndpoints", "nodeInfo"):
            obj.get("status", {}).pop(key, None)
    out = os.path.join(here, "corpus", os.path.basename(path))
    with open(out, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))
