"""Scale of a user's image folder, from load to predict: wall and CPU seconds and peak memory
of `load_task("folder:…")` and of `predict` over thousands of files, each as a ratio to a
plain Pillow decode of the same files in the same run.

    python tools/benchmarks/bench_folder.py [--sizes 1000,5000] [--photos 3] [--keep DIR]
    python tools/benchmarks/bench_folder.py --native 5000

--native N measures only what keeping TensorFlow's and libjpeg's native notices off stderr
(`_tf.native_notices`, around each file's decode) costs a folder read: N 64 px JPEGs in 10
class folders, read by `load_task` in one process with the old block (a new temporary file
for each block, `old_native_notices` here) and the current one, alternately, 3 times each;
prints files/s of each (best of 3), their ratio and the block's own microseconds, and
asserts that both read bit-identical pixels.

1. Writes, for each N in --sizes, a folder of N image files in 10 class folders the way
   users' folders are: JPEG at three qualities and sizes (32 px, 256 px, 640 x 480
   progressive, --photos of 4032 x 3024 per 1,000 files), upper-case .JPG / .JPEG, EXIF-rotated
   JPEGs, PNG (RGB, RGBA, palette, 16-bit grey, grey), WebP, BMP, GIF and TIFF, nested
   sub-folders inside class folders, a class folder with spaces and non-ASCII letters, a
   linked class folder and linked files; and the litter: .DS_Store, ._x.jpg, Thumbs.db,
   desktop.ini, an empty file, a cut JPEG, a .jpg that is a PNG and one that is text.
2. For each folder, in fresh processes: the baseline (Pillow's `Image.open(...).convert(
   "RGB")` of every file in a plain loop, nothing kept), and `load_task` (TensorFlow
   imported and each format's decoder traced first, so the figures are the load's own).
   Prints seconds (wall and CPU: on a shared machine the CPU time is the cost), the peak
   resident memory above the process's before the work (VmHWM), the ratios to the
   baseline, the CPU milliseconds per file (they must not grow with N: no quadratic step),
   and the task's accounting (examples, skipped with their reasons, ignored, shrunk); and
   how much the peak grew while the loader stacked the decoded images, against the pixels
   kept (each image freed as it is copied: well under 1x; 1x when every image is held
   twice, as before 881ac13).
3. Exports a tiny one-member model (8 x 8 px, 10 classes) and runs `predict` over the
   largest folder in a fresh process, against the same baseline.

Expected: load and predict within a small factor of the baseline's CPU time (TensorFlow
decodes each file through one function call: ~0.5 ms more a small file), per-file cost flat
in N, memory bounded by the decoded images kept (shrunk to 1024 px on the shorter side), the
4 broken files skipped with their reasons and the 4 hidden entries per litter folder
ignored. Nothing is asserted; the figures are printed. --keep must be a new or empty folder.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
from benchargs import command_logging, description, integer, integers, keep_argument
from bench_rank import rss_mb  # the one reader of /proc/self/status (a sibling script)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CLASSES = 10
SIDE = 8


def line(text=""):
    print(text, flush=True)


# --- 1. the folder ------------------------------------------------------------------------------

def picture(rng, label, size=32):
    """A class's picture: a background of the class's colour, a bright square placed at
    random, noise (uint8 [size, size, 3])."""
    colour = np.array([(37 * label) % 256, (91 * label) % 256, (151 * label) % 256])
    img = np.clip(colour + rng.normal(0, 24, (size, size, 3)), 0, 255)
    s = size // 4
    y, x = rng.integers(0, size - s, 2)
    img[y:y + s, x:x + s] = 255 - colour
    return img.astype(np.uint8)


def write_folder(root, count, photos):
    """`count` image files under root/<class>/ (see the module docstring); returns root."""
    from PIL import Image

    rng = np.random.default_rng(count)
    names = [f"class {c}" for c in range(CLASSES)]
    names[3] = "Achtung Gefahr ⚠ – général"
    pool = root + "-pool"
    for i in range(count):
        label = i % CLASSES
        folder = os.path.join(pool if label == 9 else root, names[label])
        k = i // CLASSES
        if k % 3 == 0:
            folder = os.path.join(folder, str(2019 + k % 4), "trip" if k % 2 else "home")
        os.makedirs(folder, exist_ok=True)
        im = Image.fromarray(picture(rng, label))
        base = os.path.join(folder, f"IMG_{i:05d}")
        kind = (i // CLASSES) % 16
        if photos and i % max(1, count // photos) == 0 and i // max(1, count // photos) < photos:
            im.resize((4032, 3024), Image.BILINEAR).save(base + ".JPG", quality=88)
        elif kind < 4:
            ext = (".jpg", ".JPG", ".jpeg", ".JPEG")[kind]
            big = i % 7 == 0
            (im.resize((256, 256), Image.BICUBIC) if big else im).save(
                base + ext, quality=(50, 75, 95)[i % 3])
        elif kind == 4:
            exif = Image.Exif()
            exif[0x0112] = 6
            im.resize((96, 64)).save(base + ".jpg", quality=85, exif=exif)
        elif kind == 5:
            rgba = np.array(im.convert("RGBA"))
            rgba[:8, :, 3] = 0
            Image.fromarray(rgba).save(base + ".png")
        elif kind == 6:
            im.convert("P", palette=Image.ADAPTIVE).save(base + ".png")
        elif kind == 7:
            Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257).save(
                base + ".png")
        elif kind == 8:
            im.convert("L").save(base + ".PNG")
        elif kind == 9:
            im.save(base + ".webp", quality=80)
        elif kind == 10:
            im.save(base + ".bmp")
        elif kind == 11:
            im.save(base + ".gif")
        elif kind == 12:
            im.save(base + ".tif")
        elif kind == 13:
            im.resize((640, 480)).save(base + ".jpg", quality=80, progressive=True)
        else:
            im.save(base + ".png")
    os.symlink(os.path.join(pool, names[9]), os.path.join(root, names[9]))
    for t in range(3):  # linked files
        path = os.path.join(pool, f"linked{t}.png")
        Image.fromarray(picture(rng, 1)).save(path)
        os.symlink(path, os.path.join(root, names[1], f"linked{t}.png"))
    litter = os.path.join(root, names[0])
    for name, data in ((".DS_Store", b"\0\0\0\1Bud1" + bytes(100)),
                       ("._IMG_00000.jpg", b"\0\5\26\7" + bytes(200)),
                       ("Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(200)),
                       ("desktop.ini", b"[.ShellClassInfo]\n"), ("empty.jpg", b""),
                       ("notes.jpg", b"this is not an image\n")):
        with open(os.path.join(litter, name), "wb") as f:
            f.write(data)
    import io
    buf = io.BytesIO()
    Image.fromarray(picture(rng, 0, 200)).save(buf, "JPEG")
    with open(os.path.join(litter, "cut.jpg"), "wb") as f:
        f.write(buf.getvalue()[:len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(picture(rng, 0)).save(buf, "PNG")
    with open(os.path.join(litter, "really_png.jpg"), "wb") as f:
        f.write(buf.getvalue())
    return root


# --- 2. and 3. the measurements, each in a fresh process ---------------------------------------

def child(args):
    """One measurement in this process (--child baseline|load|predict); one JSON line."""
    from PIL import Image

    if args.child != "baseline":
        import tensorflow as tf  # noqa: F401 (its import is not the load's cost)

        from hubensemble.data import load_task
        from hubensemble.data.decode import decode_bytes
        from hubensemble.prediction import predict
        import io
        for fmt in ("JPEG", "PNG", "GIF", "BMP", "WEBP"):  # each format's decoder traced
            buf = io.BytesIO()
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, fmt)
            decode_bytes(buf.getvalue())
    before = rss_mb()
    t, c = time.perf_counter(), time.process_time()
    out = {}
    if args.child == "baseline":
        n = 0
        for folder, dirs, files in os.walk(args.folder, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                try:
                    with Image.open(os.path.join(folder, name)) as im:
                        np.asarray(im.convert("RGB"))
                    n += 1
                except Exception:
                    pass
        out["decoded"] = n
    elif args.child == "load":
        from hubensemble.data import folder

        stack, grew = folder._make_split, []

        def stacked(*a, **k):  # the peak's growth while the decoded images are stacked
            peak = rss_mb()["VmHWM"]
            split = stack(*a, **k)
            grew.append(rss_mb()["VmHWM"] - peak)
            return split

        folder._make_split = stacked
        task = load_task(f"folder:{args.folder}", progress=False)
        splits = [s for s in (task.train, task.val, task.test) if s is not None]
        out.update(files=task.files, examples=sum(len(s) for s in splits),
                   skipped=task.skipped, ignored=len(task.ignored), shrunk=len(task.shrunk),
                   stack_peak=sum(grew), pixels=sum(_nbytes(s.images) for s in splits) / 2**20)
    else:
        results = predict(args.model, [args.folder], top=1, progress=False)
        out.update(predicted=len(results) - results.skipped, skipped=results.skipped,
                   ignored=len(results.ignored))
    out.update(wall=time.perf_counter() - t, cpu=time.process_time() - c,
               peak=rss_mb()["VmHWM"] - before["VmHWM"], before=before["VmRSS"])
    print(json.dumps(out))


def _nbytes(images):
    """Bytes of a split's images: one array, or a list of arrays of several sizes."""
    return images.nbytes if hasattr(images, "nbytes") else sum(i.nbytes for i in images)


def measure(kind, folder, model=None):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--folder", folder]
    if model:
        cmd += ["--model", model]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench_folder: the {kind} process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(name, got, base, files):
    return (f"   {name:9} wall {got['wall']:6.2f} s ({got['wall'] / base['wall']:4.2f}x), CPU "
            f"{got['cpu']:6.2f} s ({got['cpu'] / base['cpu']:4.2f}x), "
            f"{1000 * got['cpu'] / files:5.2f} ms CPU a file; peak +{got['peak']:6.0f} MB "
            f"(process before: {got['before']:.0f} MB)")


# --- the native-notice block's cost (--native) --------------------------------------------------

def old_native_notices(what):
    """`_tf.native_notices` as it was before its sink was kept (a new temporary file for each
    block): the reference the current block is timed against, in the same process."""
    import contextlib
    import logging

    from hubensemble import _tf
    from hubensemble.errors import held_stops

    @contextlib.contextmanager
    def block():
        if not _tf.filtering():
            yield
            return
        with held_stops(at_once=False):
            sys.stderr.flush()
            sink, saved = tempfile.TemporaryFile(), os.dup(2)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                lines = sink.read().decode("utf-8", "replace").splitlines()
                sink.close()
            for text in filter(None, (x.strip() for x in lines)):
                logging.getLogger(_tf.NATIVE_LOGGER).info("%s: %s", what, text)

    return block()


def native(count, root):
    """--native: load_task's files/s with the old and the current native-notice block."""
    from PIL import Image

    from hubensemble import _tf
    from hubensemble.data import load_task

    rng = np.random.default_rng(0)
    for i in range(count):
        folder = os.path.join(root, f"class{i % CLASSES}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(picture(rng, i % CLASSES, 64)).save(
            os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    _tf.import_tensorflow()
    current = _tf.native_notices
    ways = {"old": old_native_notices, "current": current}
    best, pixels = {}, {}
    load_task(f"folder:{root}", progress=False)  # the decoder traced, the files cached
    for _ in range(3):
        for name, block in ways.items():
            _tf.native_notices = block
            try:
                t = time.perf_counter()
                task = load_task(f"folder:{root}", progress=False)
                took = time.perf_counter() - t
            finally:
                _tf.native_notices = current
            best[name] = min(best.get(name, took), took)
            got = [np.asarray(s.images) for s in (task.train, task.val, task.test)]
            assert all(np.array_equal(a, b) for a, b in zip(got, pixels.setdefault(name, got)))
    assert all(np.array_equal(a, b) for a, b in zip(pixels["old"], pixels["current"])), \
        "the old and the current block read different pixels"
    for name, block in ways.items():
        t = time.perf_counter()
        for _ in range(2000):
            with block("x"):
                pass
        each = (time.perf_counter() - t) / 2000 * 1e6
        line(f"  {name:7} block: load_task {count / best[name]:7.0f} files/s (best of 3: "
             f"{best[name]:.2f} s); the block alone {each:.0f} µs")
    line(f"  current / old: {best['old'] / best['current']:.2f}x the files/s; pixels "
         f"bit-identical")


def write_model(root):
    """A one-member export: SIDE x SIDE pixels -> CLASSES classes (a dense layer)."""
    from hubensemble import _tf

    _tf.import_tensorflow()
    import keras

    from hubensemble.export import ExportMember, save_export

    keras.utils.set_random_seed(0)
    clf = keras.Sequential([keras.Input((SIDE, SIDE, 3)), keras.layers.Flatten(),
                            keras.layers.Dense(CLASSES, activation="softmax")])
    out = os.path.join(root, "model")
    check = np.random.default_rng(1).random((4, SIDE, SIDE, 3)).astype(np.float32)
    save_export([ExportMember(clf, SIDE, 1.0, {"trial": "t0"})],
                [f"c{i}" for i in range(CLASSES)], out, check_images=check)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--sizes", type=integers(20, what="file counts"), default=[1000, 5000],
                        help="numbers of image files, comma-separated, each once (default: "
                             "1000,5000)")
    parser.add_argument("--photos", type=integer(0), default=3,
                        help="4032 x 3024 JPEGs per 1,000 files (default: 3)")
    keep_argument(parser)
    parser.add_argument("--native", type=integer(20), default=None,
                        help="only time the native-notice block over N 64 px JPEGs, old "
                             "against current (see above)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    sizes = sorted(args.sizes)
    root = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="bench_folder-")
    os.makedirs(root, exist_ok=True)
    if args.native:
        try:
            line(f"bench_folder --native: {os.cpu_count()} CPUs, load average "
                 f"{os.getloadavg()[0]:.1f}, {args.native} JPEGs of 64 px")
            native(args.native, os.path.join(root, "native"))
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        return 0
    try:
        line(f"bench_folder: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
             f"sizes {sizes}, {args.photos} photos of 4032x3024 per 1,000 files")
        folders = {}
        for n in sizes:
            t = time.perf_counter()
            folders[n] = write_folder(os.path.join(root, f"photos{n}"), n,
                                      round(args.photos * n / 1000))
            line(f"1. folder of {n} image files (+ 8 litter entries) written in "
                 f"{time.perf_counter() - t:.1f} s")
        line("2. load_task(folder:…) against a Pillow decode loop of the same files")
        for n in sizes:
            base = measure("baseline", folders[n])
            load = measure("load", folders[n])
            line(f"  {n} files: baseline decoded {base['decoded']} in {base['wall']:.2f} s "
                 f"wall, {base['cpu']:.2f} s CPU ({1000 * base['cpu'] / n:.2f} ms a file), "
                 f"peak +{base['peak']:.0f} MB")
            line(figures("load_task", load, base, n))
            ratio = load["stack_peak"] / max(load["pixels"], 1e-9)
            line(f"   stacking the decoded images raised the peak by {load['stack_peak']:.0f} MB "
                 f"for {load['pixels']:.0f} MB of pixels kept ({ratio:.2f}x; 1.0x: each "
                 f"image resident twice)")
            reasons = "; ".join(f"{os.path.basename(p)}: {textwrap.shorten(r, 80)}"
                                for p, r in load["skipped"])
            line(f"   accounting: {load['files']} files read = {load['examples']} examples + "
                 f"{len(load['skipped'])} skipped ({reasons}); {load['ignored']} ignored; "
                 f"{load['shrunk']} shrunk")
        n = sizes[-1]
        model = write_model(root)
        base = measure("baseline", folders[n])
        got = measure("predict", folders[n], model)
        line(f"3. predict over the {n}-file folder: {got['predicted']} predicted, "
             f"{got['skipped']} skipped, {got['ignored']} ignored")
        line(figures("predict", got, base, n))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    with command_logging():  # log records as a command's, not absl's basicConfig
        sys.exit(main())
