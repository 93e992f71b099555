"""napari sample data: the embedded synthetic blood smear, opened through the slide reader."""

from __future__ import annotations

from hemascope.napari.layers import LayerDataTuple, slide_layer_data


def sample_slide() -> list[LayerDataTuple]:
    """The synthetic sample smear as one multiscale RGB Image layer (scale in µm).

    Returns
    -------
    list of LayerDataTuple
        One image layer of :func:`hemascope.synthetic.sample_slide_path`, made on first use.
    """
    from hemascope.io import open_slide
    from hemascope.synthetic import sample_slide_path

    return [slide_layer_data(open_slide(sample_slide_path()))]
