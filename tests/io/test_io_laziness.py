"""Opening a 100k x 100k pyramid reads no level-0 tile data (a real file; every read is traced)."""

import bisect
import os

import numpy as np
import pytest
import tifffile
from io_samples import encoded_tile, write_precompressed_pyramid

from hemascope.errors import CorruptSlideError
from hemascope.io import open_slide

SIZE = 100_000


@pytest.fixture(scope="module")
def huge_slide(tmp_path_factory):
    # level-0 tiles are JPEG-framed garbage: decoding any of them fails loudly
    junk = b"\xff\xd8" + bytes(range(64)) + b"\xff\xd9"
    path = tmp_path_factory.mktemp("lazy") / "huge.ome.tif"
    return write_precompressed_pyramid(path, SIZE, junk, encoded_tile())


class ReadTracer:
    """Records (offset, size) of every read through tifffile's file handles and os.pread."""

    def __init__(self, monkeypatch):
        self.reads = []
        original_read = tifffile.FileHandle.read
        original_pread = os.pread

        def read(fh, size=-1):
            start = fh.tell()
            data = original_read(fh, size)
            self.reads.append((start, len(data)))
            return data

        def pread(fd, size, offset):
            self.reads.append((offset, size))
            return original_pread(fd, size, offset)

        monkeypatch.setattr(tifffile.FileHandle, "read", read)
        monkeypatch.setattr(os, "pread", pread)

    def touched(self, offsets, counts, header_bytes=8):
        """Number of reads taking more than ``header_bytes`` from one of the segments.

        tifffile probes 4 bytes of the first tile's JPEG header (``TiffPage.is_jfif``) when it
        sets up decoding; that probe reads no pixel data and is allowed.
        """
        order = np.argsort(offsets)
        starts = np.asarray(offsets)[order]
        ends = starts + np.asarray(counts)[order]
        hits = 0
        for start, size in self.reads:
            i = bisect.bisect_right(starts, start + size - 1) - 1
            while i >= 0 and ends[i] > start:
                if min(ends[i], start + size) - max(starts[i], start) > header_bytes:
                    hits += 1
                    break
                i -= 1
        return hits


def test_opening_reads_no_level0_tile(huge_slide, monkeypatch):
    with tifffile.TiffFile(huge_slide) as tif:
        level0 = tif.series[0].levels[0].keyframe
        offsets, counts = list(level0.dataoffsets), list(level0.databytecounts)
        level6 = tif.series[0].levels[6].keyframe
        offsets6, counts6 = list(level6.dataoffsets), list(level6.databytecounts)
    assert len(offsets) == 196 * 196

    tracer = ReadTracer(monkeypatch)
    slide = open_slide(huge_slide)
    assert slide.shape == (SIZE, SIZE) and slide.mpp == 0.25 and slide.n_levels == 9
    assert slide.levels[0].chunksize == (512, 512, 3)
    assert slide.levels[0].npartitions == 196 * 196
    thumb = slide.thumbnail(1024)  # reads a coarse level only
    assert thumb.shape == (1563, 1563, 3) and thumb.mean() > 100
    assert tracer.touched(offsets6, counts6) > 0  # the tracer sees tile reads
    assert tracer.touched(offsets, counts) == 0  # ... and none of level 0

    with pytest.raises(CorruptSlideError):  # level 0 is garbage: a read would not go unnoticed
        slide.read_region(0, 50_000, 50_000, 16, 16)
    assert tracer.touched(offsets, counts) > 0
    slide.close()
