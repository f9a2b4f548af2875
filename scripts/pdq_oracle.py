#!/usr/bin/env python3
"""Reference PDQ values for hashgate's PDQ tests, from Meta's C++ implementation.

Generates a deterministic set of test images (fixed numpy seed), saves each as PNG
(lossless: a Rust decoder sees the same pixels) and JPEG (quality 90), and hashes each with
Meta's C++ PDQ (PyPI `pdqhash`) on `Image.open(path).convert("RGB")`, the way Meta's
published reference values are computed. Also hashes the shared vectors of
tests/fixtures/pdq/, dumps Pillow's RGB pixels of every JPEG as raw `.rgb` files (so the Rust
side can hash exactly the pixels the reference hashed), the reference's eight dihedral
hashes of bridge-1-original, and transformed copies of some images for robustness checks.

Writes into --out:
  oracle.tsv     file, width, height, hash (64 hex), quality, role, base
                 role: png | jpeg | vector | transform | unrelated; base: the image a
                 transformed copy was made from (else "-")
  dihedral.tsv   index, name, hash: the reference's variants of bridge-1-original
  *.png, *.jpg, *.rgb

Usage: .venv-pdq/bin/python scripts/pdq_oracle.py --out DIR
"""

import argparse
import io
import os
import struct
import sys
import zlib

import numpy
import pdqhash
from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "tests", "fixtures", "pdq")
SEED = 20171009  # the PDQ paper's date


def hash_file(path):
    """The reference hash and quality of an image file, decoded by Pillow to RGB."""
    rgb = numpy.asarray(Image.open(path).convert("RGB"))
    vec, quality = pdqhash.compute(rgb)
    return rgb, numpy.packbits(vec.astype(numpy.uint8)).tobytes().hex(), quality


def png16_rgb(path, array):
    """Writes a 16-bit RGB PNG by hand (Pillow cannot write one)."""
    h, w, _ = array.shape
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


class Generator:
    def __init__(self):
        self.rng = numpy.random.default_rng(SEED)
        self.photos = [
            Image.open(os.path.join(VECTORS, "images", name)).convert("RGB")
            for name in sorted(os.listdir(os.path.join(VECTORS, "images")))
            if name.endswith(".jpg")
        ]
        self.font = ImageFont.load_default()

    def size(self):
        r = self.rng.random()
        if r < 0.08:
            return int(self.rng.integers(1, 8)), int(self.rng.integers(1, 8))
        if r < 0.2:  # extreme aspect ratios
            long, short = int(self.rng.integers(200, 1500)), int(self.rng.integers(1, 24))
            return (long, short) if self.rng.random() < 0.5 else (short, long)
        if r < 0.3:
            return int(self.rng.integers(60, 70)), int(self.rng.integers(60, 70))
        if r < 0.33:
            return int(self.rng.integers(600, 1500)), int(self.rng.integers(400, 1200))
        return int(self.rng.integers(8, 400)), int(self.rng.integers(8, 400))

    def gradient(self, w, h):
        x = numpy.linspace(0, 1, w)[None, :, None]
        y = numpy.linspace(0, 1, h)[:, None, None]
        a, b, c = self.rng.random((3, 1, 1, 3)) * 2 - 1
        img = 128 + 127 * numpy.sin(6 * (a * x + b * y + c))
        return Image.fromarray(img.clip(0, 255).astype(numpy.uint8))

    def noise(self, w, h):
        cell = int(self.rng.integers(1, 40))
        small = self.rng.integers(0, 256, (max(1, h // cell), max(1, w // cell), 3))
        img = Image.fromarray(small.astype(numpy.uint8))
        return img.resize((w, h), Image.Resampling.NEAREST)

    def shapes(self, w, h):
        img = Image.new("RGB", (w, h), tuple(int(v) for v in self.rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(self.rng.integers(1, 12))):
            x0, x1 = sorted(self.rng.integers(0, max(w, 2), 2).tolist())
            y0, y1 = sorted(self.rng.integers(0, max(h, 2), 2).tolist())
            fill = tuple(int(v) for v in self.rng.integers(0, 256, 3))
            if self.rng.random() < 0.5:
                draw.ellipse([x0, y0, x1, y1], fill=fill)
            else:
                draw.rectangle([x0, y0, x1, y1], fill=fill)
        return img

    def photo(self, w, h):
        src = self.photos[int(self.rng.integers(0, len(self.photos)))]
        sw, sh = src.size
        cw, ch = int(self.rng.integers(sw // 4, sw + 1)), int(self.rng.integers(sh // 4, sh + 1))
        x, y = int(self.rng.integers(0, sw - cw + 1)), int(self.rng.integers(0, sh - ch + 1))
        return src.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.BILINEAR)

    def text(self, w, h):
        img = Image.new("RGB", (w, h), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        for line in range(0, h, 12):
            words = " ".join(
                "".join(chr(int(c)) for c in self.rng.integers(97, 123, int(self.rng.integers(2, 9))))
                for _ in range(12)
            )
            draw.text((2, line), words, fill=(0, 0, 0), font=self.font)
        return img

    def image(self):
        w, h = self.size()
        content = ["gradient", "noise", "shapes", "photo", "photo", "text"][int(self.rng.integers(0, 6))]
        return content, getattr(self, content)(w, h)

    def mode(self, img):
        """A colour mode for the PNG: RGB, L, RGBA (random alpha), P, I;16 or 16-bit RGB."""
        r = self.rng.random()
        if r < 0.4:
            return "RGB", img
        if r < 0.55:
            return "L", img.convert("L")
        if r < 0.7:
            rgba = img.convert("RGBA")
            alpha = self.rng.integers(0, 256, (img.size[1], img.size[0])).astype(numpy.uint8)
            rgba.putalpha(Image.fromarray(alpha))
            return "RGBA", rgba
        if r < 0.82:
            return "P", img.convert("P", palette=Image.Palette.ADAPTIVE, colors=int(self.rng.integers(2, 256)))
        if r < 0.91:
            grey = numpy.asarray(img.convert("L")).astype(numpy.uint16)
            # Mostly below 256 so that Pillow's clipping leaves a picture.
            return "I;16", Image.fromarray((grey + (grey // 8) * 2).astype(numpy.uint16))
        return "RGB16", numpy.asarray(img).astype(numpy.uint16) * 257 + self.rng.integers(0, 256, (img.size[1], img.size[0], 3)).astype(numpy.uint16)


def text_overlay(img):
    out = img.copy()
    draw = ImageDraw.Draw(out)
    draw.text((4, 4), "hashgate", fill=(255, 255, 0), font=ImageFont.load_default())
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=220)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = []

    def record(name, role, base="-", dump_rgb=False):
        path = os.path.join(args.out, name)
        rgb, hex_hash, quality = hash_file(path)
        h, w = rgb.shape[:2]
        rows.append(f"{name}\t{w}\t{h}\t{hex_hash}\t{quality}\t{role}\t{base}")
        if dump_rgb:
            with open(path + ".rgb", "wb") as f:
                f.write(rgb.tobytes())
        return quality

    # The shared vectors (JPEG): Pillow's pixels too, for the same-pixels check.
    for name in sorted(os.listdir(os.path.join(VECTORS, "images"))):
        with open(os.path.join(VECTORS, "images", name), "rb") as src:
            data = src.read()
        with open(os.path.join(args.out, name), "wb") as dst:
            dst.write(data)
        record(name, "vector", dump_rgb=True)

    # The reference's dihedral variants of bridge-1-original.
    bridge = numpy.asarray(Image.open(os.path.join(VECTORS, "images", "bridge-1-original.jpg")).convert("RGB"))
    variants, _ = pdqhash.compute_dihedral(bridge)
    names = ["original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flipplus1", "flipminus1"]
    with open(os.path.join(args.out, "dihedral.tsv"), "w") as f:
        for i, (name, vec) in enumerate(zip(names, variants)):
            f.write(f"{i}\t{name}\t{numpy.packbits(vec.astype(numpy.uint8)).tobytes().hex()}\n")

    gen = Generator()
    bases = []
    for i in range(args.count):
        content, img = gen.image()
        mode, out = gen.mode(img)
        stem = f"gen{i:03d}-{content}-{mode.replace(';', '')}"
        if mode == "RGB16":
            png16_rgb(os.path.join(args.out, stem + ".png"), out)
            img = Image.fromarray((out >> 8).astype(numpy.uint8))
        else:
            out.save(os.path.join(args.out, stem + ".png"))
        quality = record(stem + ".png", "png")
        jpeg_src = img.convert("L") if mode in ("L", "I;16") else img.convert("RGB")
        jpeg_src.save(os.path.join(args.out, stem + ".jpg"), quality=90)
        record(stem + ".jpg", "jpeg", dump_rgb=True)

    # Transformed copies of photos of ordinary sizes (PDQ's robustness is for natural images;
    # small ones lose much in halving), and unrelated images.
    attempt = 0
    while len(bases) < 10:
        attempt += 1
        w, h = int(gen.rng.integers(400, 800)), int(gen.rng.integers(400, 800))
        img = gen.photo(w, h)
        stem = f"base{attempt:02d}-photo-RGB"
        img.save(os.path.join(args.out, stem + ".png"))
        if record(stem + ".png", "png") >= 80:
            bases.append((stem, img))
    for stem, img in bases:
        w, h = img.size
        img.save(os.path.join(args.out, f"{stem}-q70.jpg"), quality=70)
        img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BILINEAR).save(os.path.join(args.out, f"{stem}-half.png"))
        text_overlay(img).save(os.path.join(args.out, f"{stem}-text.png"))
        img.convert("L").save(os.path.join(args.out, f"{stem}-grey.png"))
        for suffix in ("q70.jpg", "half.png", "text.png", "grey.png"):
            record(f"{stem}-{suffix}", "transform", base=f"{stem}.png")
    for i in range(12):
        content, img = gen.image()
        while min(img.size) < 64:
            content, img = gen.image()
        name = f"unrelated{i:02d}-{content}.png"
        img.save(os.path.join(args.out, name))
        record(name, "unrelated")

    with open(os.path.join(args.out, "oracle.tsv"), "w") as f:
        f.write("file\twidth\theight\thash\tquality\trole\tbase\n")
        f.write("\n".join(rows) + "\n")
    print(f"{len(rows)} images, {len(bases)} transform bases -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
