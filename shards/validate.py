"""Check every shard of an output directory against its manifest and the schema.

    python -m shards.validate OUT_DIR [--kind m3w]

Exit code 0 when every shard listed in manifest.json exists with the recorded
size, sha256 and sample count, every sample validates, and no shard tar in the
directory is missing from the manifest (a stale one from an earlier run would be
read by a ``*.tar`` glob); 1 otherwise, with one line per problem naming the
shard and sample.
"""
from __future__ import annotations

import hashlib
import os
import sys

from .cli import Parser
from .schema import SchemaError, decode_members, validate_sample

PROG = "python -m shards.validate"


def validate_dir(out_dir: str, kind: str | None = None) -> tuple[int, list[str]]:
    """Returns (samples checked, problems)."""
    # Beam's filesystems and webdataset load here, after the arguments are checked.
    from apache_beam.io.filesystems import FileSystems

    from .reader import iter_tar_samples
    from .writer import MANIFEST, join, read_manifest, shard_files

    problems: list[str] = []
    try:
        manifest = read_manifest(out_dir)
    except FileNotFoundError as e:
        return 0, [str(e)]
    kind = kind or manifest["kind"]
    listed = {s["name"] for s in manifest["shards"]}
    for name in shard_files(out_dir):
        if name not in listed:
            problems.append(f"{name}: not listed in {MANIFEST} (a stale shard from an earlier run? "
                            "a *.tar glob would read it)")
    n = 0
    for shard in manifest["shards"]:
        path = join(out_dir, shard["name"])
        if not FileSystems.exists(path):
            problems.append(f"{shard['name']}: listed in manifest but missing")
            continue
        with FileSystems.open(path, compression_type="uncompressed") as fh:
            data = fh.read()
        if len(data) != shard["bytes"]:
            problems.append(f"{shard['name']}: {len(data)} bytes, manifest says {shard['bytes']}")
        if hashlib.sha256(data).hexdigest() != shard["sha256"]:
            problems.append(f"{shard['name']}: sha256 differs from manifest")
        count = 0
        try:
            for raw in iter_tar_samples(data, shard["name"]):
                count += 1
                try:
                    validate_sample(kind, decode_members(raw))
                except SchemaError as e:
                    problems.append(f"{shard['name']}: {e}")
                except ValueError as e:
                    problems.append(f"{shard['name']}: sample {raw.get('__key__')!r}: {e}")
        except Exception as e:
            problems.append(f"{shard['name']}: unreadable tar ({e})")
        if count != shard["count"]:
            problems.append(f"{shard['name']}: {count} samples, manifest says {shard['count']}")
        n += count
    return n, problems


def main(argv=None) -> int:
    ap = Parser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", help="an output folder of make m3w / pairs / videos (any Beam filesystem)")
    ap.add_argument("--kind", choices=["m3w", "pairs", "videos"],
                    help="check the samples as this kind (default: the manifest's)")
    args = ap.parse_args(argv)
    if "://" not in args.out_dir and not os.path.isdir(args.out_dir):
        ap.error(f"{args.out_dir}: no such directory (an output folder of make m3w / pairs / videos)")
    n, problems = validate_dir(args.out_dir, args.kind)
    for p in problems:
        print(p)
    print(f"{args.out_dir}: {n} samples checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
