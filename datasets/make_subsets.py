#!/usr/bin/env python3
"""Make the small class-balanced MNIST and Fashion-MNIST subsets bundled in datasets/.

Usage: python3 datasets/make_subsets.py FULL_DATA_DIR [OUTPUT_DIR]

FULL_DATA_DIR contains mnist/ and fashion-mnist/, each with the four standard gzip IDX files
(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz). OUTPUT_DIR defaults to the folder that contains this script.

The script keeps 200 training and 100 test images of every class. The images of each class are
chosen by a Fisher-Yates shuffle driven by splitmix64 with a fixed seed, so the selection does
not depend on the Python version. Chosen images keep their original relative order. Each
output file is written with gzip level 9, mtime 0 and no file name in the gzip header, so the
same zlib produces the same bytes on every run. The script uses only the standard library.
"""

import gzip
import hashlib
import struct
import sys
from pathlib import Path

SEED = 20170314
TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 100
CLASS_COUNT = 10
IMAGE_SIDE = 28

# SHA-256 of the published full files; the subsets are only meaningful when made from these.
SOURCE_SHA256 = {
    "mnist/train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "mnist/train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "mnist/t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
    "mnist/t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
    "fashion-mnist/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

MASK64 = (1 << 64) - 1


class SplitMix64:
    """splitmix64 (Steele, Lea and Flood 2014): a tiny generator that is the same everywhere."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        """Return an integer in [0, n) by multiply-shift."""
        return (self.next_u64() * n) >> 64


def shuffled(items, rng):
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = rng.below(i + 1)
        items[i], items[j] = items[j], items[i]
    return items


def check_source(full_dir, relative):
    path = full_dir / relative
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256[relative]:
        sys.exit(f"{path}: SHA-256 is {digest}, expected {SOURCE_SHA256[relative]}; "
                 "the subsets must be made from the published files")
    return path


def read_idx(path, expected_rank):
    data = gzip.decompress(path.read_bytes())
    zero, element_type, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or element_type != 0x08 or rank != expected_rank:
        sys.exit(f"{path}: expected an unsigned-byte IDX file of rank {expected_rank}")
    dims = struct.unpack(f">{rank}I", data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def choose_per_class(labels, per_class, rng):
    """Return sorted indices with exactly `per_class` items of every class."""
    chosen = []
    for digit in range(CLASS_COUNT):
        members = [i for i, label in enumerate(labels) if label == digit]
        if len(members) < per_class:
            sys.exit(f"class {digit} has only {len(members)} items, {per_class} needed")
        chosen.extend(shuffled(members, rng)[:per_class])
    return sorted(chosen)


def write_idx_gz(path, element_dims, items):
    header = struct.pack(">HBB", 0, 0x08, 1 + len(element_dims))
    header += struct.pack(f">{1 + len(element_dims)}I", len(items), *element_dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as out:
            out.write(header)
            for item in items:
                out.write(item)


def make_split(full_dir, out_dir, dataset, split, per_class, rng):
    images_path = check_source(full_dir, f"{dataset}/{split}-images-idx3-ubyte.gz")
    labels_path = check_source(full_dir, f"{dataset}/{split}-labels-idx1-ubyte.gz")
    image_dims, pixels = read_idx(images_path, 3)
    (label_count,), labels = read_idx(labels_path, 1)
    if image_dims != (label_count, IMAGE_SIDE, IMAGE_SIDE):
        sys.exit(f"{images_path}: shape {image_dims} does not match {label_count} labels")

    chosen = choose_per_class(labels, per_class, rng)
    size = IMAGE_SIDE * IMAGE_SIDE
    target = out_dir / dataset
    target.mkdir(parents=True, exist_ok=True)
    write_idx_gz(target / images_path.name, (IMAGE_SIDE, IMAGE_SIDE),
                 [pixels[i * size:(i + 1) * size] for i in chosen])
    write_idx_gz(target / labels_path.name, (), [labels[i:i + 1] for i in chosen])
    print(f"{dataset} {split}: {len(chosen)} of {label_count} items")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    full_dir = Path(sys.argv[1])
    out_dir = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent
    for dataset in ("mnist", "fashion-mnist"):
        # One generator per dataset and split, so changing one subset leaves the others alone.
        for split, per_class, offset in (("train", TRAIN_PER_CLASS, 0), ("t10k", TEST_PER_CLASS, 1)):
            stream = SEED + offset + (2 if dataset == "fashion-mnist" else 0)
            make_split(full_dir, out_dir, dataset, split, per_class, SplitMix64(stream))


if __name__ == "__main__":
    main()
