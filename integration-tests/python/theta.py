"""Reads the theta sketches of a Puffin statistics file with Apache DataSketches' own library
(not ours): prints one JSON object per blob, {"fields", "ndv" (the property), "estimate"}.

Usage: theta.py <path of the .stats file>
"""

import json
import struct
import sys

from datasketches import compact_theta_sketch


def blobs(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"PFA1" or data[-4:] != b"PFA1":
        raise SystemExit(f"{path}: not a Puffin file")
    payload_size = struct.unpack("<I", data[-12:-8])[0]
    flags = data[-8:-4]
    if flags[0] & 1:
        raise SystemExit(f"{path}: compressed footers are not read here")
    footer = json.loads(data[-12 - payload_size : -12])
    for blob in footer["blobs"]:
        if blob.get("compression-codec") not in (None, "none"):
            raise SystemExit(f"{path}: blob compressed with {blob['compression-codec']}")
        body = data[blob["offset"] : blob["offset"] + blob["length"]]
        yield blob, compact_theta_sketch.deserialize(body)


def main():
    out = []
    for blob, sketch in blobs(sys.argv[1].removeprefix("file://")):
        out.append({"type": blob["type"], "fields": blob["fields"], "ndv": int(blob["properties"]["ndv"]), "estimate": sketch.get_estimate()})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
