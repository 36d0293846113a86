"""A licence credential as a QR code image (PNG), made with segno (BSD-3-Clause, pure Python).

segno implements ISO/IEC 18004:2015 (https://segno.readthedocs.io/en/latest/make.html). The
credential's base64url and '.' characters are outside the QR alphanumeric set, so the whole token
is byte mode; a 1024-character credential still fits comfortably (version 40-M holds 2331 bytes).
"""

from __future__ import annotations

import io
from typing import Final

import segno

from licences.credential import MAX_CREDENTIAL_CHARS

# At least level M (15 % of codewords recoverable): a card shown on a scratched phone screen or
# a worn printout. segno raises the level further when that needs no larger symbol (boost_error,
# which segno's documentation recommends keeping on).
QR_ERROR_LEVEL: Final = "m"
# Pixels per module: a typical 516-character credential is a version 18 symbol (89 modules), so
# 388 pixels across with the border; the longest (1024 characters) is version 26, 516 pixels.
QR_SCALE: Final = 4
MIN_QR_SCALE: Final = 1
MAX_QR_SCALE: Final = 16
# The quiet zone ISO/IEC 18004 asks for around a QR code: four modules.
QR_BORDER_MODULES: Final = 4


def credential_qr_png(token: str, *, scale: int = QR_SCALE) -> bytes:
    """The PNG image of a QR code holding exactly token (byte mode, no Micro QR).

    Raises ValueError when token is empty, not ASCII or longer than MAX_CREDENTIAL_CHARS, or
    scale is outside [MIN_QR_SCALE, MAX_QR_SCALE] (the image size stays bounded).
    """
    if not token or not token.isascii() or len(token) > MAX_CREDENTIAL_CHARS:
        raise ValueError(f"a credential is 1 to {MAX_CREDENTIAL_CHARS} ASCII characters")
    if not MIN_QR_SCALE <= scale <= MAX_QR_SCALE:
        raise ValueError(f"the QR scale is {MIN_QR_SCALE} to {MAX_QR_SCALE} pixels per module")
    code = segno.make_qr(token, error=QR_ERROR_LEVEL, mode="byte", boost_error=True)
    out = io.BytesIO()
    code.save(out, kind="png", scale=scale, border=QR_BORDER_MODULES)
    return out.getvalue()
