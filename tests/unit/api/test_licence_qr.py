"""The credential QR image (api/licences/qr.py), decoded back by an independent decoder.

zxing-cpp (Apache-2.0) reads the PNG through Pillow; the decoded text must be exactly the token.
"""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from api.licences.qr import MAX_QR_SCALE, QR_BORDER_MODULES, QR_SCALE, credential_qr_png
from licences.credential import MAX_CREDENTIAL_CHARS
from tests.unit.licences.test_credential import TOKEN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode(png: bytes) -> tuple[str, int]:
    """The text of the one QR code in png, and the image width in pixels."""
    image = Image.open(io.BytesIO(png))
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    assert len(found) == 1
    return found[0].text, image.width


def test_png_decodes_to_the_exact_token() -> None:
    png = credential_qr_png(TOKEN)
    assert png.startswith(PNG_SIGNATURE)
    text, width = _decode(png)
    assert text == TOKEN
    # Version 18 (89 modules) for the typical credential, plus the quiet zone on both sides.
    assert width == (89 + 2 * QR_BORDER_MODULES) * QR_SCALE


def test_longest_credential_decodes() -> None:
    token = (TOKEN * 2)[:MAX_CREDENTIAL_CHARS]
    text, _ = _decode(credential_qr_png(token, scale=2))
    assert text == token


def test_scale_changes_the_size_only() -> None:
    small, large = credential_qr_png(TOKEN, scale=2), credential_qr_png(TOKEN, scale=MAX_QR_SCALE)
    assert _decode(small)[0] == _decode(large)[0] == TOKEN
    assert _decode(large)[1] == _decode(small)[1] * MAX_QR_SCALE // 2


@pytest.mark.parametrize("token", ["", "é" + TOKEN[1:], "A" * (MAX_CREDENTIAL_CHARS + 1)])
def test_refuses_what_is_no_credential(token: str) -> None:
    with pytest.raises(ValueError, match="credential"):
        credential_qr_png(token)


@pytest.mark.parametrize("scale", [0, MAX_QR_SCALE + 1])
def test_scale_is_bounded(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        credential_qr_png(TOKEN, scale=scale)
