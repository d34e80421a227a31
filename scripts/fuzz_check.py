#!/usr/bin/env python3
"""Throw mutated and hand-made hostile files at `nachweis check`.

Usage: python3 scripts/fuzz_check.py BINARY [BUNDLES] [SEED]

Seeds are the fixture uploads and the shared corpus (`../shared/corpus`, or
NACHWEIS_CORPUS_DIR). Each bundle gets 1-3 mutated files (byte flips,
truncation, splices, repeated or zeroed ranges, absurd numbers, nesting
junk); the hand-made ones are PDFs with page-tree cycles, 100 000 nested
`q`, 50 000 nested arrays, a claimed billion pages, bogus fonts, image
filters with nonsense data, and images with absurd dimensions. Anything but
exit 0 or 2 within 300 s, a panic, or stdout that is not JSON is reported;
the script exits 1 then. It runs from any working directory."""
import hashlib, json, os, random, shutil, subprocess, sys, time, zlib, base64
from pathlib import Path

BIN = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
random.seed(SEED)
import tempfile
ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("NACHWEIS_CORPUS_DIR") or ROOT.parent / "shared" / "corpus")
OUT = Path(tempfile.mkdtemp(prefix="nachweis-fuzz-"))
shutil.rmtree(OUT, ignore_errors=True)
OUT.mkdir(parents=True)

seeds = []
for p in list((ROOT / "fixtures/bundles").rglob("*")) + list(CORPUS.rglob("*")):
    if p.is_file() and p.suffix.lower() in (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff") and p.stat().st_size < 3_000_000:
        seeds.append(p)
print(f"{len(seeds)} seed files", flush=True)

MEDIA = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff", ".tiff": "image/tiff"}

def mutate(data: bytes) -> bytes:
    b = bytearray(data)
    kind = random.choice(["flip", "trunc", "splice", "dup", "zero", "nums", "insert"])
    if kind == "flip":
        for _ in range(random.randint(1, 50)):
            if b: b[random.randrange(len(b))] = random.randrange(256)
    elif kind == "trunc":
        b = b[: random.randint(0, max(1, len(b) - 1))]
    elif kind == "splice":
        other = random.choice(seeds).read_bytes()
        cut = random.randint(0, len(b)); cut2 = random.randint(0, len(other))
        b = b[:cut] + other[cut2:]
    elif kind == "dup":
        if b:
            s = random.randrange(len(b)); e = min(len(b), s + random.randint(1, 5000))
            b = b[:e] + b[s:e] * random.randint(2, 50) + b[e:]
    elif kind == "zero":
        if b:
            s = random.randrange(len(b)); b[s:s + random.randint(1, 4096)] = bytes(min(4096, len(b) - s))
    elif kind == "nums":
        # enlarge numbers in PDF syntax (widths, counts, offsets, lengths)
        import re
        txt = bytes(b)
        def rep(m):
            return str(random.choice([0, -1, 2**31 - 1, 2**32, 2**63, 99999999, int(m.group(0)) * 1000])).encode() if random.random() < 0.1 else m.group(0)
        b = bytearray(re.sub(rb"\d+", rep, txt[:2_000_000]))
    elif kind == "insert":
        junk = random.choice([b"<<" * 5000, b"[" * 20000, b"(" * 20000, b"\x00" * 10000, b"obj " * 3000, b"/Type /Page " * 1000, b"stream\r\n" + os.urandom(2000)])
        p = random.randint(0, len(b)); b = b[:p] + junk + b[p:]
    return bytes(b)

def handmade():
    """Structurally hostile PDFs built from scratch."""
    items = []
    def pdf(objs, trailer_extra=b""):
        out = bytearray(b"%PDF-1.7\n"); offs = []
        for i, o in enumerate(objs, 1):
            offs.append(len(out)); out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
        x = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        for o in offs: out += b"%010d 00000 n \n" % o
        out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, trailer_extra, x)
        return bytes(out)
    # page tree cycle
    items.append(("cycle.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"])))
    # deep nesting in content stream
    content = b"q " * 100000 + b"BT /F1 12 Tf (Hallo) Tj ET"
    items.append(("deepq.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream"])))
    # deeply nested arrays in a dict
    items.append(("deeparray.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * 50000 + b"]" * 50000 + b" >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])))
    # million pages claimed
    items.append(("count.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R 3 0 R 3 0 R] /Count 999999999 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1e30 1e30] >>"])))
    # same page repeated 5000 times
    kids = b" ".join([b"3 0 R"] * 5000)
    items.append(("manypages.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [" + kids + b"] /Count 5000 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"])))
    # huge mediabox with a tiny image
    items.append(("hugebox.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /UserUnit 75000 >>"])))
    # object stream referencing itself
    items.append(("objstm.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /ObjStm /N 1000000 /First 0 /Length 0 /Extends 3 0 R >>\nstream\n\nendstream"])))
    # font with garbage
    fnt = os.urandom(5000)
    items.append(("badfont.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length 30 >>\nstream\nBT /F1 12 Tf 50 700 Td (Lohn) Tj ET\nendstream",
        b"<< /Type /Font /Subtype /TrueType /BaseFont /X /FirstChar 0 /LastChar 4294967295 /Widths [1 2 3] /FontFile2 6 0 R /ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(fnt) + fnt + b"\nendstream"])))
    # only a header
    items.append(("header.pdf", b"%PDF-1.4\n"))
    # PNG claiming huge with valid-ish IHDR but short
    import struct
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    items.append(("wide.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 2**31 - 1, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")))
    items.append(("apng.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100, 100, 16, 6, 0, 0, 0)) + chunk(b"acTL", struct.pack(">II", 2**31, 0)) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")))
    # TIFF with many IFDs looping
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHII", 256, 4, 1, 100000) + struct.pack("<I", 8)
    items.append(("loop.tif", tiff))
    # JPEG with huge dimensions in SOF
    jpg = b"\xff\xd8\xff\xc0\x00\x11\x08\xff\xff\xff\xff\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + os.urandom(1000) + b"\xff\xd9"
    items.append(("big.jpg", jpg))
    # a PDF with an inline JBIG2/JPX image of nonsense
    img = os.urandom(3000)
    for filt in [b"/JPXDecode", b"/JBIG2Decode", b"/CCITTFaxDecode /DecodeParms << /Columns 100000 /K -1 >>", b"/DCTDecode", b"/RunLengthDecode", b"/LZWDecode", b"[/FlateDecode /ASCII85Decode /ASCIIHexDecode]"]:
        items.append((f"img-{filt[1:8].decode(errors='ignore').strip('/ [')}.pdf", pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /I 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length 26 >>\nstream\nq 595 0 0 842 0 0 cm /I Do Q\nendstream",
            b"<< /Type /XObject /Subtype /Image /Width 30000 /Height 30000 /BitsPerComponent 1 /ColorSpace /DeviceGray /Filter " + filt + b" /Length %d >>\nstream\n" % len(img) + img + b"\nendstream"])))
    return items

def bundle(i, files, manifest_tweak=None):
    d = OUT / f"b{i:04d}"; d.mkdir()
    docs = []
    for j, (name, data, mt) in enumerate(files):
        fn = f"f{j}{Path(name).suffix}"
        (d / fn).write_bytes(data)
        docs.append({"document_id": f"d{j}", "filename": name, "media_type": mt, "sha256": hashlib.sha256(data).hexdigest(), "declared_type": "lohnnachweis", "path": fn})
    m = {"bundle_id": f"fuzz-{SEED}-{i}", "procedure": "uvg", "received_at": "2026-11-18T09:30:00Z",
         "applicant": {"given_name": "Anna", "family_name": "Test", "address": {"street": "Weg 1", "postal_code": "12345", "city": "Ort"}},
         "facts": {}, "children": [{"given_name": "Kim", "family_name": "Test", "birth_date": "2020-01-01"}], "documents": docs}
    if manifest_tweak: m = manifest_tweak(m)
    (d / "manifest.json").write_text(json.dumps(m, ensure_ascii=False))
    return d

bad = []
def run(d, label):
    t = time.time()
    try:
        p = subprocess.run([BIN, "check", str(d), "--json"], capture_output=True, timeout=300, env={**os.environ, "RUST_BACKTRACE": "1", "NACHWEIS_LOG": "warn"})
    except subprocess.TimeoutExpired:
        bad.append((label, "TIMEOUT", "")); print("TIMEOUT", label, flush=True); return
    dt = time.time() - t
    err = p.stderr.decode(errors="replace")
    out = p.stdout.decode(errors="replace")
    if p.returncode not in (0, 2) or "panicked" in err or "panicked" in out:
        bad.append((label, p.returncode, err[-2000:])); print("BAD", label, p.returncode, err[-600:], flush=True)
    elif p.returncode == 0:
        try:
            j = json.loads(out)
        except Exception as e:
            bad.append((label, "BADJSON", out[:300])); print("BADJSON", label, flush=True)
    if dt > 60: print(f"slow {label} {dt:.1f}s", flush=True)

i = 0
for name, data in handmade():
    mt = MEDIA.get(Path(name).suffix, "application/pdf")
    run(bundle(i, [(name, data, mt)]), name); i += 1
print("handmade done", flush=True)
for k in range(N):
    files = []
    labels = []
    for _ in range(random.randint(1, 3)):
        s = random.choice(seeds)
        data = mutate(s.read_bytes())
        mt = MEDIA[s.suffix.lower()]
        if random.random() < 0.1: mt = random.choice(list(MEDIA.values()))
        files.append((s.name, data, mt)); labels.append(s.name)
    run(bundle(i, files), f"b{i:04d}:" + ",".join(labels)); i += 1
    if k % 20 == 0: print(f"{k}/{N} bad={len(bad)}", flush=True)
print(f"done: {i} bundles, {len(bad)} bad (bundles kept in {OUT})")
for b in bad: print(b[0], b[1]); print(b[2][-800:])
if not bad:
    shutil.rmtree(OUT, ignore_errors=True)
sys.exit(1 if bad else 0)
