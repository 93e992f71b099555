"""Synthetic images and slide files for the I/O tests (every file is written by the tests)."""

import numpy as np
import tifffile
from PIL import Image

from hemascope.io import write_ome_zarr, write_pyramidal_tiff
from hemascope.io.tiles import downsample2

APERIO = "Aperio Image Library v12.0.15\r\n{cols}x{rows} [0,0 {cols}x{rows}] (256x256) JPEG Q=90|AppMag = 40|MPP = 0.2498"


def smooth_image(rows: int = 600, cols: int = 700) -> np.ndarray:
    """A smooth RGB pattern (survives JPEG well) with distinct rows and columns."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    r = 128 + 100 * np.sin(yy / 37.0)
    g = 128 + 100 * np.cos(xx / 53.0)
    b = 128 + 60 * np.sin((yy + xx) / 71.0)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def write_format(kind: str, directory, image: np.ndarray):
    """Write ``image`` in one of the supported formats; returns (path, expected mpp, lossless)."""
    d = directory
    if kind == "ome-tiff":
        return (
            write_pyramidal_tiff(
                d / "s.ome.tif", image, mpp=0.25, tile_size=256, compression="zlib"
            ),
            0.25,
            True,
        )
    if kind == "ome-tiff-single":
        path = write_pyramidal_tiff(
            d / "s1.ome.tif", image, mpp=0.3, tile_size=256, compression="zlib", n_levels=1
        )
        return path, 0.3, True
    if kind == "tiff":
        path = write_pyramidal_tiff(
            d / "p.tif", image, mpp=0.5, tile_size=256, compression="zlib", ome=False
        )
        return path, 0.5, True
    if kind == "bigtiff":
        path = d / "big.tif"
        tifffile.imwrite(
            path,
            image,
            bigtiff=True,
            tile=(128, 128),
            photometric="rgb",
            resolution=(1e4 / 0.4, 1e4 / 0.4),
            resolutionunit="CENTIMETER",
        )
        return path, 0.4, True
    if kind == "svs":
        return write_svs(d / "s.svs", image), 0.2498, False
    if kind == "ndpi":
        # tifffile detects NDPI from the Hamamatsu tags; it cannot write the NDPI 64-bit-offset
        # layout, so the file keeps a .tif suffix (a .ndpi suffix makes tifffile expect that layout)
        path = d / "h.tif"
        tags = [
            (65420, "I", 1, 1, True),
            (65421, "f", 1, 20.0, True),
            (271, "s", 0, "Hamamatsu", True),
            (272, "s", 0, "C13220", True),
        ]
        tifffile.imwrite(
            path,
            image,
            photometric="rgb",
            compression="jpeg",
            extratags=tags,
            rowsperstrip=64,
            resolution=(1e4 / 0.23, 1e4 / 0.23),
            resolutionunit="CENTIMETER",
        )
        return path, 0.23, False
    if kind in ("ome-zarr-0.4", "ome-zarr-0.5"):
        version = kind.rsplit("-", 1)[1]
        return (
            write_ome_zarr(
                d / f"z{version}.ome.zarr", image, mpp=0.35, version=version, chunks=256
            ),
            0.35,
            True,
        )
    if kind == "png":
        path = d / "f.png"
        Image.fromarray(image).save(path)
        return path, None, True
    if kind == "jpeg":
        path = d / "f.jpg"
        Image.fromarray(image).save(path, quality=95)
        return path, None, False
    if kind == "webp":
        path = d / "f.webp"
        Image.fromarray(image).save(path, lossless=True)
        return path, None, True
    if kind == "plain-tiff":
        path = d / "plain.tif"
        tifffile.imwrite(path, image, photometric="rgb")
        return path, None, True
    raise ValueError(kind)


def write_svs(path, image: np.ndarray):
    """An Aperio-layout file: tiled baseline, stripped thumbnail, tiled levels, label."""
    desc = APERIO.format(rows=image.shape[0], cols=image.shape[1])
    opts = {
        "photometric": "rgb",
        "compression": "jpeg",
        "compressionargs": {"level": 90},
        "metadata": None,
    }
    with tifffile.TiffWriter(path) as tw:
        tw.write(image, tile=(256, 256), description=desc, **opts)
        tw.write(
            np.ascontiguousarray(image[::8, ::8]),
            description=desc.replace("\r\n", " -> thumb\r\n", 1),
            **opts,
        )
        level = image
        for _ in range(2):
            level = downsample2(level)
            tw.write(level, tile=(256, 256), description=desc, **opts)
        tw.write(
            np.ascontiguousarray(image[::10, ::10]),
            subfiletype=1,
            description="Aperio Image Library v12\r\nlabel",
            **opts,
        )
    return path


def patch_tile_table(path, tag_name: str, index: int, value: int, page: int = 0) -> None:
    """Overwrite entry ``index`` of a page's TileOffsets/TileByteCounts (or Strip*) in place."""
    import struct

    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[page].tags[tag_name]
        fmt = {4: "I", 16: "Q", 3: "H"}[tag.dtype]
        byteorder = tif.byteorder
        if tag.count == 1:
            offset = tag.valueoffset
        else:
            offset = tag.valueoffset + index * struct.calcsize(fmt)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack(byteorder + fmt, value))


def tile_table(path, page: int = 0):
    """(offsets, bytecounts) of a page."""
    with tifffile.TiffFile(path) as tif:
        p = tif.pages[page]
        return list(p.dataoffsets), list(p.databytecounts)


def encoded_tile(tile_size: int = 512) -> bytes:
    """The JPEG bytes tifffile writes for one RGB tile (for building huge files cheaply)."""
    import io

    tile = np.full((tile_size, tile_size, 3), 200, np.uint8)
    tile[tile_size // 5 : tile_size // 2, tile_size // 10 : tile_size // 2] = (120, 60, 150)
    buf = io.BytesIO()
    opts = {"photometric": "rgb", "compression": "jpeg", "compressionargs": {"level": 90}}
    with tifffile.TiffWriter(buf) as tw:
        tw.write(tile, tile=(tile_size, tile_size), metadata=None, **opts)
    buf.seek(0)
    with tifffile.TiffFile(buf) as tif:
        page = tif.pages[0]
        return bytes(
            buf.getvalue()[page.dataoffsets[0] : page.dataoffsets[0] + page.databytecounts[0]]
        )


def write_precompressed_pyramid(
    path, size: int, level0_tile: bytes, upper_tile: bytes, tile_size: int = 512
):
    """A real pyramidal OME-TIFF (BigTIFF, JPEG tiles) of ``size`` x ``size`` from repeated tiles.

    Writing precompressed tiles takes well under a second even for 100k x 100k.
    """
    from hemascope.io.tiles import level_shapes_for

    shapes = level_shapes_for((size, size), tile_size, None)

    def tiles(shape, data):
        for _ in range(-(-shape[0] // tile_size) * -(-shape[1] // tile_size)):
            yield data

    common = {
        "photometric": "rgb",
        "tile": (tile_size, tile_size),
        "compression": "jpeg",
        "dtype": np.uint8,
    }
    meta = {"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        tw.write(
            tiles(shapes[0], level0_tile),
            shape=(*shapes[0], 3),
            subifds=len(shapes) - 1,
            metadata=meta,
            **common,
        )
        for shape in shapes[1:]:
            tw.write(
                tiles(shape, upper_tile), shape=(*shape, 3), subfiletype=1, metadata=None, **common
            )
    return path


PHILIPS_XML = """<?xml version="1.0" encoding="UTF-8" ?>
<DataObject ObjectType="DPUfsImport">
<Attribute Name="DICOM_MANUFACTURER" Group="0x0008" Element="0x0070" PMSVR="IString">PHILIPS</Attribute>
<Attribute Name="PIM_DP_SCANNED_IMAGES" Group="0x301D" Element="0x1003" PMSVR="IDataObjectArray">
<Array><DataObject ObjectType="DPScannedImage">
<Attribute Name="PIM_DP_IMAGE_TYPE" Group="0x301D" Element="0x1004" PMSVR="IString">WSI</Attribute>
<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" Group="0x1001" Element="0x8B01" PMSVR="IDataObjectArray">
<Array>{levels}</Array></Attribute>
</DataObject></Array></Attribute>
</DataObject>"""
PHILIPS_LEVEL = """<DataObject ObjectType="PixelDataRepresentation">
<Attribute Name="DICOM_PIXEL_SPACING" Group="0x0028" Element="0x0030" PMSVR="IDoubleArray">"{mm}" "{mm}"</Attribute>
</DataObject>"""


def write_philips(path, image: np.ndarray, mm_per_px: float = 0.00025, levels: int = 3):
    """A Philips-TIFF replica: tiled JPEG levels, ``Philips DP`` software, XML description."""
    xml = PHILIPS_XML.format(
        levels="".join(PHILIPS_LEVEL.format(mm=mm_per_px * 2**i) for i in range(levels))
    )
    opts = {"photometric": "rgb", "compression": "jpeg", "tile": (256, 256), "metadata": None,
            "software": "Philips DP v1.0"}
    with tifffile.TiffWriter(path) as tw:
        level = image
        for i in range(levels):
            tw.write(level, description=xml if i == 0 else "level", **opts)
            level = downsample2(level)
    return path


def tag_position(path, tag_name: str, page: int = 0) -> tuple[int, str]:
    """File offset of a tag's IFD entry and the file's byte order."""
    with tifffile.TiffFile(path) as tif:
        return tif.pages[page].tags[tag_name].offset, tif.byteorder


def set_tag_code(path, tag_name: str, code: int, page: int = 0) -> None:
    """Rename a tag in place (e.g. hide the Compression tag behind a private code)."""
    import struct

    offset, byteorder = tag_position(path, tag_name, page)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack(byteorder + "H", code))


def set_short_tag_value(path, tag_name: str, value: int, pages=(0,)) -> None:
    """Overwrite the value of a SHORT tag stored inline (classic TIFF)."""
    import struct

    for page in pages:
        offset, byteorder = tag_position(path, tag_name, page)
        with open(path, "r+b") as fh:
            fh.seek(offset + 8)
            fh.write(struct.pack(byteorder + "H", value))


def point_last_ifd_to(path, target_page: int) -> None:
    """Make the last IFD's next-IFD pointer point at an earlier IFD (a loop), classic TIFF."""
    import struct

    with tifffile.TiffFile(path) as tif:
        offsets = [p.offset for p in tif.pages]
        byteorder = tif.byteorder
    with open(path, "r+b") as fh:
        fh.seek(offsets[-1])
        count = struct.unpack(byteorder + "H", fh.read(2))[0]
        fh.seek(offsets[-1] + 2 + 12 * count)
        fh.write(struct.pack(byteorder + "I", offsets[target_page]))


def zero_half_of_segment(path, index: int, page: int = 0) -> None:
    """Zero the second half of one tile's/strip's bytes, keeping its last 2 bytes (EOI marker)."""
    offsets, counts = tile_table(path, page)
    start, count = offsets[index], counts[index]
    with open(path, "r+b") as fh:
        fh.seek(start + count // 2)
        fh.write(b"\x00" * (count - count // 2 - 2))


def write_dicom_wsi(folder, image, tile=128, mm_per_px=0.00025):
    """A DICOM-WSI series (VL Whole Slide Microscopy, TILED_FULL, JPEG baseline frames), one
    instance per 2x pyramid level, written with pydicom (what scanners' converters produce)."""
    import imagecodecs
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import JPEGBaseline8Bit, generate_uid
    study, series, frame_ref = generate_uid(), generate_uid(), generate_uid()
    levels = [image]
    while max(levels[-1].shape[:2]) > tile:
        levels.append(np.ascontiguousarray(levels[-1][::2, ::2]))
    paths = []
    for i, level in enumerate(levels):
        rows, cols = level.shape[:2]
        frames = []
        for r in range(0, rows, tile):
            for c in range(0, cols, tile):
                t = np.full((tile, tile, 3), 255, np.uint8)
                block = level[r:r + tile, c:c + tile]
                t[:block.shape[0], :block.shape[1]] = block
                frames.append(imagecodecs.jpeg8_encode(t, level=95))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_ref
        ds.Modality = "SM"
        ds.ImageType = ["ORIGINAL" if i == 0 else "DERIVED", "PRIMARY", "VOLUME", "NONE" if i == 0 else "RESAMPLED"]
        ds.InstanceNumber = i + 1
        ds.ContainerIdentifier = "slide-1"
        ds.DimensionOrganizationType = "TILED_FULL"
        ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = rows, cols
        ds.TotalPixelMatrixFocalPlanes = 1
        ds.Rows = ds.Columns = tile
        ds.NumberOfFrames = len(frames)
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.LossyImageCompression = "01"
        ds.ImagedVolumeWidth = cols * mm_per_px * 2**i
        ds.ImagedVolumeHeight = rows * mm_per_px * 2**i
        ds.ImagedVolumeDepth = 0.001
        pm = Dataset()
        pm.PixelSpacing = [mm_per_px * 2**i, mm_per_px * 2**i]
        pm.SliceThickness = 0.001
        shared = Dataset()
        shared.PixelMeasuresSequence = Sequence([pm])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        op = Dataset()
        op.OpticalPathIdentifier = "1"
        op.IlluminationTypeCodeSequence = Sequence([_code("111744", "DCM", "Brightfield illumination")])
        op.IlluminationColorCodeSequence = Sequence([_code("414298005", "SCT", "Full Spectrum")])
        ds.OpticalPathSequence = Sequence([op])
        ds.NumberOfOpticalPaths = 1
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].VR = "OB"
        path = f"{folder}/level{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, scheme, meaning
    return code


def _jpeg_with_restarts(image: np.ndarray, blocks: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90, restart_marker_blocks=blocks,
                                subsampling=0)
    return buf.getvalue()


def _mcu_starts(data: bytes) -> list[int]:
    """Offsets of the first entropy-coded byte and of the byte after each restart marker."""
    import struct

    sos = data.index(b"\xff\xda")
    starts = [sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]]
    i = starts[0]
    while (j := data.find(b"\xff", i)) >= 0 and j + 1 < len(data):
        if 0xD0 <= data[j + 1] <= 0xD7:
            starts.append(j + 2)
        elif data[j + 1] == 0xD9:
            break
        i = j + 2
    return starts


def write_ndpi_replica(path, image: np.ndarray, levels: int = 2, blocks: int = 64):
    """A Hamamatsu NDPI replica: each level one JPEG with restart markers every ``blocks`` MCUs
    and their McuStarts (tag 65426), so tifffile and OpenSlide split it into restart intervals.

    Keep a ``.tif`` suffix for tifffile (it expects NDPI's 64-bit layout of a ``.ndpi`` suffix);
    OpenSlide recognises the same bytes under a ``.ndpi`` name.
    """
    with tifffile.TiffWriter(path) as tw:
        level = image
        for i in range(levels):
            data = _jpeg_with_restarts(level, blocks)
            starts = _mcu_starts(data)
            tags = [(65420, "I", 1, 1, True), (65421, "f", 1, 20.0, True),
                    (65422, "i", 1, 0, True), (65423, "i", 1, 0, True), (65424, "i", 1, 0, True),
                    (65426, "I", len(starts), starts, True),
                    (271, "s", 0, "Hamamatsu", True), (272, "s", 0, "C13220", True)]
            mpp = 0.23 * 2**i
            tw.write(iter([data]), shape=level.shape, dtype=np.uint8, photometric="ycbcr",
                     compression=7, rowsperstrip=level.shape[0], extratags=tags,
                     subsampling=(1, 1), metadata=None, resolution=(1e4 / mpp, 1e4 / mpp),
                     resolutionunit="CENTIMETER")
            level = np.ascontiguousarray(level[::2, ::2])
    return path
