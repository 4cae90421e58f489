import numpy as np

from stream.crops import expand_box, rectified


def _skewed_plate_frame():
    """A 400x300 grey frame holding a white plate drawn as a skewed quadrilateral with a black bar
    across its middle; returns (frame, corners tl, tr, br, bl)."""
    import cv2

    frame = np.full((300, 400, 3), 90, np.uint8)
    corners = np.array([[100, 120], [260, 100], [262, 150], [102, 172]], np.float32)
    cv2.fillConvexPoly(frame, corners.astype(np.int32), (255, 255, 255))
    mid = (corners[0] + corners[3]) / 2, (corners[1] + corners[2]) / 2
    cv2.line(frame, tuple(int(v) for v in mid[0]), tuple(int(v) for v in mid[1]), (0, 0, 0), 6)
    return frame, corners


def test_rectified_crop_is_a_frontal_plate():
    frame, corners = _skewed_plate_frame()
    box = expand_box(np.array([100, 100, 262, 172], np.float32), 0.15, 400, 300)
    crop = rectified(frame, corners, box, margin=0.0)
    assert crop is not None and crop.shape[1] > 2.5 * crop.shape[0]
    # the skewed black bar becomes a horizontal one: the middle row is dark end to end, the top row white
    grey = crop.mean(axis=2)
    h = crop.shape[0]
    assert grey[h // 2, 5:-5].mean() < 80 and grey[3, 5:-5].mean() > 200


def test_implausible_corners_fall_back_to_the_box():
    frame, corners = _skewed_plate_frame()
    box = expand_box(np.array([100, 100, 262, 172], np.float32), 0.15, 400, 300)
    assert rectified(frame, np.full((4, 2), np.nan, np.float32), box, 0.08) is None
    assert rectified(frame, corners[[0, 3, 2, 1]] * 0 + corners[0], box, 0.08) is None   # collapsed
    assert rectified(frame, corners + np.float32([300, 0]), box, 0.08) is None           # far off the box
    tall = np.array([[100, 20], [120, 20], [120, 280], [100, 280]], np.float32)
    assert rectified(frame, tall, box, 0.08) is None                                     # taller than wide
