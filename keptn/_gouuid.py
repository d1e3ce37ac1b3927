"""Go's ``github.com/google/uuid`` as Keptn's api-service used it for ``shkeptncontext``.

Private helper of :mod:`keptn.events`; kept apart so that the byte-level details stay in one
small, well-tested place.
"""

from __future__ import annotations

import uuid

_HEX = "0123456789abcdefABCDEF"
# Byte offsets of the 16 hex pairs in "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
_PAIR_OFFSETS = (0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34)


def go_bytes(text: str) -> bytes:
    """Return the bytes Go holds for a string that reached it through ``encoding/json``.

    Go's JSON decoder turns an unpaired UTF-16 surrogate escape into U+FFFD; Python keeps it as a
    lone surrogate, which UTF-8 cannot encode. Replace it the way Go does.

    Args:
        text: a Python string (e.g. decoded from a JSON request body).

    Returns:
        Its UTF-8 bytes as Go would have them.
    """
    if any("\ud800" <= char <= "\udfff" for char in text):
        text = "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text.encode("utf-8")


def _hex_pair(data: bytes, offset: int) -> int | None:
    pair = data[offset : offset + 2]
    if len(pair) != 2 or any(chr(b) not in _HEX for b in pair):
        return None
    return int(pair.decode("ascii"), 16)


def go_uuid_parse(text: str) -> uuid.UUID | None:
    """Parse a UUID with exactly the leniency of Go's ``uuid.Parse``; None where Go fails.

    Go accepts, by byte length: 36 ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``; 45 the same with a
    case-insensitive ``urn:uuid:`` prefix; 38 the same wrapped in *any* two characters (Go drops
    the first and never looks at the last, so ``{…}`` but also ``x…y``); 32 plain hex. Hex digits
    may be upper or lower case; version and variant bits are not checked.

    Args:
        text: the candidate string.

    Returns:
        The UUID, or None if Go's parser would return an error.
    """
    data = go_bytes(text)
    if len(data) == 32:
        values = [_hex_pair(data, 2 * i) for i in range(16)]
    else:
        if len(data) == 45:
            if data[:9].lower() != b"urn:uuid:":
                return None
            data = data[9:]
        elif len(data) == 38:
            data = data[1:]
        elif len(data) != 36:
            return None
        if any(data[i] != ord("-") for i in (8, 13, 18, 23)):
            return None
        values = [_hex_pair(data, offset) for offset in _PAIR_OFFSETS]
    if any(v is None for v in values):
        return None
    return uuid.UUID(bytes=bytes(v for v in values if v is not None))


def go_uuid_from_seed(text: str) -> uuid.UUID:
    """Reproduce ``uuid.SetRand(strings.NewReader(seed)); uuid.New()`` as Keptn's api-service did.

    Keptn pads a context shorter than 16 *bytes* with ``fmt.Sprintf("%-16v", s)``, which pads to
    16 *runes*; the reader then yields bytes, and ``uuid.New`` reads the first 16 of them and sets
    the version (4) and RFC 4122 variant bits. A multi-byte string shorter than 16 bytes therefore
    gets fewer spaces than 16 - len(bytes), and only its first 16 bytes count.

    Args:
        text: a non-empty context string that is not a UUID.

    Returns:
        The deterministic version-4 UUID Keptn derived from it.
    """
    data = go_bytes(text)
    if len(data) < 16:
        runes = len(data.decode("utf-8"))
        data += b" " * max(0, 16 - runes)
    raw = bytearray(data[:16])
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))
