"""core.serving.overlay.on_photo: the map lands on the crop square the nets saw (images.crop_box, as
load_photo's display copy gives it), smooth and in the same colours as attribution.render's blend;
the rest of the photo is dimmed, never coloured; the outline stays thin; bad inputs are refused.
Photos are made in memory."""
import io

import numpy as np
import pytest
from PIL import Image

from core.research import attribution
from core.research.attribution import AttributionError
from core.serving import images, overlay
from core.serving.overlay import on_photo

GREY = 128


def grey(w, h, value=GREY) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def corner_map(n=32, hot=8) -> np.ndarray:
    """Hot (1.0) only in the grid's top-left hot x hot cells, as attribute returns it (n x n x 3)."""
    a = np.zeros((n, n, 3), np.float32)
    a[:hot, :hot] = 1.0
    return a


def band(box, w, h, line) -> np.ndarray:
    """True where the outline may be drawn: within line + 1 pixels of the square's border."""
    left, top, right, bottom = box
    yy, xx = np.mgrid[:h, :w]
    r = line + 1
    near_x = (np.abs(xx - left) <= r) | (np.abs(xx - (right - 1)) <= r)
    near_y = (np.abs(yy - top) <= r) | (np.abs(yy - (bottom - 1)) <= r)
    in_x = (xx >= left - r) & (xx <= right - 1 + r)
    in_y = (yy >= top - r) & (yy <= bottom - 1 + r)
    return (near_x & in_y) | (near_y & in_x)


def inside_mask(box, w, h) -> np.ndarray:
    left, top, right, bottom = box
    m = np.zeros((h, w), bool)
    m[top:bottom, left:right] = True
    return m


def test_crop_box():
    assert images.crop_box(300, 100) == (100, 0, 200, 100) and images.crop_box(100, 301) == (0, 100, 100, 200)
    assert images.crop_box(101, 100) == (0, 0, 100, 100) and images.crop_box(50, 50) == (0, 0, 50, 50)
    with pytest.raises(ValueError):
        images.crop_box(0, 10)
    data = io.BytesIO()
    Image.new("RGB", (64, 40), (1, 2, 3)).save(data, "PNG")
    photo, box = images.load_photo(data.getvalue(), max_side=4096)[2:]  # never upscaled
    assert photo.size == (64, 40) and box == (12, 0, 52, 40)
    photo, box = images.load_photo(data.getvalue(), max_side=32)[2:]
    assert photo.size == (32, 20) and box == (6, 0, 26, 20)


@pytest.mark.parametrize("w, h", [(1280, 853), (300, 640), (256, 256), (97, 40)])
def test_size_and_box_for_each_shape(w, h):
    box = images.crop_box(w, h)
    left, top, right, bottom = box
    assert right - left == bottom - top == min(w, h)
    assert abs((left + right) - w) <= 1 and abs((top + bottom) - h) <= 1  # centred
    out = on_photo(corner_map(), grey(w, h), box)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    pil = on_photo(corner_map(), Image.fromarray(grey(w, h)), box)
    assert np.array_equal(pil, out)


def test_box_is_what_to_cifar_crops():
    """A 1500 x 900 photo: blue exactly on the centre square to_cifar crops, red around it."""
    w, h = 1500, 900
    left, top, right, bottom = images.crop_box(w, h)
    assert (left, top, right, bottom) == (300, 0, 1200, 900)
    a = np.zeros((h, w, 3), np.uint8)
    a[...] = (255, 0, 0)
    a[top:bottom, left:right] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    chw, small, photo, box = images.load_photo(buf.getvalue(), max_side=500)
    assert photo.size == (500, 300) and box == (100, 0, 400, 300)
    assert (chw[2] == 255).all() and (chw[0] == 0).all()  # the nets saw only blue
    p = np.asarray(photo).astype(int)
    inner = p[:, box[0] + 2:box[2] - 2]
    assert (inner[..., 2] > 240).all() and (inner[..., 0] < 15).all()
    outer = np.concatenate([p[:, :box[0] - 2], p[:, box[2] + 2:]], axis=1)
    assert (outer[..., 0] > 240).all() and (outer[..., 2] < 15).all()


@pytest.mark.parametrize("w, h", [(1280, 853), (600, 1000), (512, 512)])
def test_corner_map_only_touches_the_squares_top_left_quarter(w, h):
    box = images.crop_box(w, h)
    left, top, right, bottom = box
    side = right - left
    line = overlay.line_width((w, h))
    photo = grey(w, h)
    out = on_photo(corner_map(), photo, box).astype(int)
    changed = np.abs(out - GREY).sum(-1) > 0
    inside, edge = inside_mask(box, w, h), band(box, w, h, line)
    quarter = np.zeros((h, w), bool)
    quarter[top:top + side // 2, left:left + side // 2] = True
    assert not (changed & inside & ~quarter & ~edge).any()  # the other three quarters: the photo
    hot = out[top + side // 16:top + side // 5, left + side // 16:left + side // 5]
    want = 0.25 * GREY + 0.75 * attribution.INFERNO[-1]  # full magnitude: BLEND_ALPHA of the top colour
    assert np.abs(hot - want).max() <= 1
    # the colour fades out within the quarter: the bilinear transition spans half a cell past 8/32
    row = out[top + side // 8, left:right, 0]
    assert (row[int(side * 8.6 / 32):side - line - 2] == GREY).all()  # the outline straddles the right edge


def test_outside_dimmed_never_coloured():
    w, h = 900, 500
    box = images.crop_box(w, h)
    photo = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    hot_everywhere = np.ones((32, 32, 3), np.float32)
    for sign in attribution.SIGNS:
        out = on_photo(hot_everywhere, photo, box, sign, dim=0.45)
        outside = ~inside_mask(box, w, h) & ~band(box, w, h, overlay.line_width((w, h)))
        assert np.array_equal(out[outside], np.rint(photo[outside] * np.float32(0.45)).astype(np.uint8))
    g = on_photo(hot_everywhere, grey(w, h), box)
    far = g[:, :box[0] - 10]
    assert (far == round(GREY * overlay.DIM)).all() and far.min() > 30  # grey, dimmed, visible
    assert np.array_equal(on_photo(hot_everywhere, photo, box, dim=1.0)[outside], photo[outside])


def test_zero_map_leaves_the_square_as_the_photo():
    w, h = 640, 960
    box = images.crop_box(w, h)
    photo = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    line = overlay.line_width((w, h))
    out = on_photo(np.zeros((32, 32, 3), np.float32), photo, box)
    keep = inside_mask(box, w, h) & ~band(box, w, h, line)
    assert np.array_equal(out[keep], photo[keep])
    left, top, right, bottom = box
    assert not np.array_equal(out[top:bottom, left:right], photo[top:bottom, left:right])  # outline
    clean = on_photo(np.zeros((32, 32)), photo, box, line=0)
    assert np.array_equal(clean[top:bottom, left:right], photo[top:bottom, left:right])


def test_outline_thin_and_visible_on_light_and_dark():
    w, h = 960, 640
    box = images.crop_box(w, h)
    left = box[0]
    line = overlay.line_width((w, h))
    assert line == 2 and overlay.line_width((4000, 3000)) == 8 and overlay.line_width((100, 60)) == 1
    for value in (0, 255):
        out = on_photo(np.zeros((32, 32, 3)), grey(w, h, value), box).astype(int)
        row = out[h // 2, left - 3:left + 3]  # dimmed photo, dark, white x line, dark, photo
        want = [[round(value * overlay.DIM)] * 3, overlay.EDGE, overlay.LINE, overlay.LINE, overlay.EDGE, [value] * 3]
        assert np.array_equal(row, want)
        assert (np.abs(out - out[h // 2, :1]).sum(-1) > 0)[:, :left - line - 2].sum() == 0


def test_colours_are_scale_map_and_colormap():
    """Half strength on the left, full on the right: each blended as render's blend would."""
    w, h = 400, 400
    box = images.crop_box(w, h)
    a = np.zeros((32, 32, 3), np.float32)
    a[:, :16] = 0.5
    a[:, 16:] = 1.0
    m = attribution.scale_map(a, "positive")
    assert m[0, 0] == 0.5 and m[0, -1] == 1.0
    out = on_photo(a, grey(w, h), box, "positive").astype(float)
    for x, v in ((100, 0.5), (300, 1.0)):
        want = (1 - 0.75 * v) * GREY + 0.75 * v * attribution.colormap(np.float64(v), attribution.INFERNO)
        assert np.abs(out[200, x] - want).max() <= 1


def test_upsampling_is_smooth():
    w, h = 800, 800
    a = np.zeros((32, 32, 3), np.float32)
    a[:, 16:] = 1.0  # a step between columns 15 and 16
    out = on_photo(a, grey(w, h), (0, 0, w, h), line=0)
    row = out[400, :, 0].astype(int)
    assert len(np.unique(row[350:450])) > 10  # nearest-neighbour would give two levels
    assert (np.abs(np.diff(row)) <= 20).all()  # no jump (nearest-neighbour: 93 at once)


def test_sign_changes_the_output():
    w, h = 320, 240
    box = images.crop_box(w, h)
    a = np.zeros((32, 32, 3), np.float32)
    a[:, :16] = -1.0  # negative on the left half, positive on the right
    a[:, 16:] = 1.0
    outs = {s: on_photo(a, grey(w, h), box, s).astype(int) for s in attribution.SIGNS}
    y, xl, xr = h // 2, box[0] + 60, box[2] - 60
    assert (outs["positive"][y, xl] == GREY).all()  # negative: not shown
    assert not (outs["absolute"][y, xl] == GREY).all()  # shown by magnitude
    blue, red = outs["all"][y, xl], outs["all"][y, xr]
    assert blue[2] > blue[0] + 30 and red[0] > red[2] + 30  # diverging: blue below zero, red above
    assert not np.array_equal(outs["positive"], outs["absolute"])
    assert not np.array_equal(outs["absolute"], outs["all"])


@pytest.mark.parametrize("kw, words", [
    (dict(attr=np.zeros((32, 16, 3))), "attr"),
    (dict(attr=np.zeros(32)), "attr"),
    (dict(attr=np.array([["a"] * 4] * 4)), "numeric"),
    (dict(photo=np.zeros((100, 200, 3), np.float32)), "uint8"),
    (dict(photo=np.zeros((100, 200), np.uint8)), "H x W x 3"),
    (dict(photo=Image.new("RGBA", (200, 100))), "RGB"),
    (dict(photo=[[0, 0, 0]]), "photo"),
    (dict(box=(50, 0, 150)), "4 integers"),
    (dict(box=(50.0, 0, 150, 100)), "4 integers"),
    (dict(box=(150, 0, 250, 100)), "inside"),
    (dict(box=(-1, 0, 99, 100)), "inside"),
    (dict(box=(50, 0, 150, 90)), "square"),
    (dict(box=(50, 0, 50, 0)), "empty"),
    (dict(sign="negative"), "sign"),
    (dict(dim=1.5), "dim"),
    (dict(dim=float("nan")), "dim"),
    (dict(line=-1), "line"),
    (dict(line=1.5), "line"),
])
def test_bad_inputs(kw, words):
    args = dict(attr=np.zeros((32, 32, 3)), photo=np.zeros((100, 200, 3), np.uint8), box=(50, 0, 150, 100))
    args.update(kw)
    with pytest.raises(AttributionError, match=words):
        on_photo(**args)


def test_no_torch_at_import():
    import subprocess
    import sys
    code = "import sys, core.serving.overlay; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
