"""Unpacking a downloaded module archive (.tar, .tar.gz, .tar.bz2, .tar.xz) into a folder,
safely: member paths kept inside it, links and devices refused, every compressed stream's
checksum read, and what it unpacks to bounded (docs/security.md). No network here: the
resolvers (`hub.resolvers`) hand it the stream they download.
"""

import bz2
import errno
import gzip
import lzma
import os
import re
import shutil
import tarfile
import zlib

import tensorflow as tf

from hubensemble.fileio import tf_path
from hubensemble.handles import what_bytes_are
from hubensemble.hub import remote
from hubensemble.hub.tfhub import submodule
from hubensemble.text import escaped

file_utils = submodule("file_utils")

#: The compressed streams a module archive may come in: (first bytes, name, opener of a
#: decompressing reader). Each reader checks its stream's own checksum (gzip's CRC-32 and
#: length, bzip2's block CRCs, xz's check) when it is read to its end.
_COMPRESSIONS = ((b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
                 (b"BZh", "bzip2", bz2.BZ2File),
                 (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile))


class _Prefixed:
    """`fileobj` with `head` (bytes already read from it) in front again."""

    def __init__(self, head, fileobj):
        self._head, self._f = head, fileobj

    def read(self, n=-1):
        if self._head:
            out = self._head if n is None or n < 0 else self._head[:n]
            self._head = self._head[len(out):]
            return out
        return self._f.read(n)


def extract_archive(fileobj, dst_path) -> None:
    """Streams the tar archive (.tar, or gzip / bzip2 / xz compressed) read from `fileobj`
    into the folder `dst_path`, as tensorflow_hub's extractor does and with its rule for
    member paths (`file_utils.merge_relative_path`: inside `dst_path`, a leading "/" dropped,
    ".." that leaves it refused), except that:

    * a file's folders are made when the archive has no entry for them (`tar czf m.tar.gz
      saved_model.pb variables/*` writes none; tensorflow_hub's extractor then fails on the
      first file in a folder);
    * a compressed stream is read to its end, so its checksum is checked: the tar reader
      stops at the archive's end marker, before gzip's CRC, and a gzip whose data was
      damaged in the middle was unpacked into a module whose variables were garbage;
    * what it unpacks to is bounded (`_Bounded`, `_check_fits`): at most MAX_UNPACK_RATIO
      times the bytes read so far plus UNPACK_ALLOWANCE, and no member larger than the
      disk's free space, so a small archive of zeros cannot fill the disk.

    Raises tarfile.TarError for what is not a tar archive (saying what it is: a web page, a
    zip) or a damaged compressed stream, ValueError naming a member that leaves the
    folder, is a link, device or FIFO, or unpacks past the bounds (docs/security.md), and
    OSError(ENOSPC) naming a member larger than the disk's free space (the disk's fault, as
    a write that finds no room: `resolvers.full_disk`)."""
    dst_path = os.fspath(dst_path)
    fileobj = _Counted(fileobj)
    head = b""
    while len(head) < 40:
        more = fileobj.read(40 - len(head))
        if not more:
            break
        head += more
    stream, kind = _Prefixed(head, fileobj), None
    for magic, name, opener in _COMPRESSIONS:
        if head.startswith(magic):
            stream, kind = opener(stream), name
            break
    try:
        try:
            members = 0
            # Names read as UTF-8 (as TensorFlow writes them), not in the locale's encoding:
            # under a C locale with PYTHONUTF8=0 'café.txt' became 'caf\udcc3\udca9.txt'.
            with tarfile.open(mode="r|", fileobj=_Bounded(stream, fileobj),
                              encoding="utf-8") as tar:
                for member in tar:
                    members += 1
                    _check_fits(member, dst_path)
                    _extract_member(tar, member, dst_path)
        except tarfile.TarError as e:
            if kind is None:
                if not members:  # not a tar at all: say what came instead
                    way = ZIP_WAY if head.startswith(b"PK\x03\x04") else ""
                    raise tarfile.ReadError(f"not a tar archive: it holds "
                                            f"{what_bytes_are(head)} ({e}){way}") from e
                raise
            # A damaged compressed stream can hand out garbage before its check fails
            # (bzip2 checks a block's CRC after its data): its own verdict names the fault.
            _read_to_end(stream)
            raise
        if kind is not None:
            _read_to_end(stream)  # the stream's checksum
    except (EOFError, zlib.error, lzma.LZMAError, OSError) as e:
        if not isinstance(e, (EOFError, zlib.error, lzma.LZMAError)) and (
                e.errno is not None or isinstance(e, (TimeoutError, ConnectionError))):
            raise  # the network's, not the archive's
        raise tarfile.ReadError(f"the archive's {kind or 'tar'} data is damaged "
                                f"({type(e).__name__}: {e})") from e


#: The way on for a zip served as a module archive (tensorflow_hub's archives are tars).
ZIP_WAY = ("; a module archive is a tar (.tar, .tar.gz, .tar.bz2 or .tar.xz) of the module "
           "folder's contents: unzip it and catalogue the folder as a local handle, or pack "
           "the folder as one (tar czf module.tar.gz -C FOLDER .)")


#: What an archive may unpack to: this many times the bytes read so far, plus the allowance
#: (module weights barely compress, graphs ~10 times; 99 % zeros is a bomb, not a module).
MAX_UNPACK_RATIO = 100
UNPACK_ALLOWANCE = 256 << 20


class _Counted:
    """`fileobj`, counting the bytes read from it."""

    def __init__(self, fileobj):
        self._f, self.bytes = fileobj, 0

    def read(self, n=-1):
        data = self._f.read(n)
        self.bytes += len(data)
        return data


class _Bounded:
    """The decompressed stream of an archive, refusing to hand out more than MAX_UNPACK_RATIO
    times the compressed bytes read so far plus UNPACK_ALLOWANCE: checked as it is read, so
    a bomb stops at the bound, not after it wrote a huge member."""

    def __init__(self, stream, source):
        self._stream, self._source, self.bytes = stream, source, 0

    def read(self, n=-1):
        data = self._stream.read(n)
        self.bytes += len(data)
        bound = MAX_UNPACK_RATIO * self._source.bytes + UNPACK_ALLOWANCE
        if self.bytes > bound:
            raise ValueError(
                f"the archive unpacks to more than {bound:,} bytes ({MAX_UNPACK_RATIO} times "
                f"the {self._source.bytes:,} bytes read so far, plus {UNPACK_ALLOWANCE >> 20} "
                "MiB): refused as a decompression bomb; if the module is genuine, unpack it "
                "yourself and give its folder as the handle")
        return data


def _check_fits(member, dst_path):
    """Refuses a member larger than the free space on the disk of `dst_path`: OSError(ENOSPC)
    naming `dst_path`."""
    probe = dst_path
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    free = shutil.disk_usage(probe).free
    if member.isfile() and member.size > free:  # the disk's (ENOSPC), not the archive's fault
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: the archive's member "
                      f"{member.name!r} ({member.size:,} bytes) does not fit in the {free:,} "
                      "bytes free on that disk", dst_path)


def _read_to_end(stream):
    while stream.read(remote.CHUNK):
        pass


def _extract_member(tar, member, dst_path):
    if re.search("[\ud800-\udfff]", member.name):  # a byte that is not UTF-8
        raise ValueError(f"the archive's member '{escaped(member.name)}' has a name that is "
                         "not UTF-8 (made on a system of another encoding, e.g. Latin-1), "
                         "which TensorFlow can neither write nor read; rename it in UTF-8 and "
                         "pack the module again")
    try:
        target = file_utils.merge_relative_path(dst_path, member.name)
    except ValueError:  # tensorflow_hub's words: "Relative path '../x' is invalid."
        raise ValueError(f"the archive's member {member.name!r} leads out of the folder it "
                         "unpacks into ('..'); a module archive may hold only paths inside "
                         "it (refused: docs/security.md)") from None
    if member.isdir():
        tf.io.gfile.makedirs(tf_path(target))
    elif member.isfile():
        tf.io.gfile.makedirs(tf_path(os.path.dirname(target)))
        file_utils.extract_file(tar, member, target)
    else:
        kind = ("a symbolic link" if member.issym() else "a hard link"
                if member.islnk() else "a device or FIFO")
        raise ValueError(f"the archive's member {member.name!r} is {kind}; a module archive "
                         "may hold only files and folders")
