"""Pure encoding of Textual keys, pastes and mouse events into the bytes a terminal sends.

xterm's conventions: application cursor mode switches arrows to SS3, modifiers use the
`1;m` parameter (m = 1 + shift + 2·alt + 4·ctrl), Alt prefixes ESC, and the mouse is
reported only in the mode (and encoding) the program asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from engine import TerminalModes

MouseAction = Literal["press", "release", "motion", "wheel-up", "wheel-down"]

_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6}
_TILDE.update(
    {f"f{n}": code for n, code in zip(range(5, 13), (15, 17, 18, 19, 20, 21, 23, 24), strict=True)}
)
_SS3_F = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_PLAIN = {"enter": b"\r", "tab": b"\t", "backspace": b"\x7f", "escape": b"\x1b", "space": b" "}
_CTRL_SYMBOLS = {
    "space": 0,
    "@": 0,
    "left_square_bracket": 27,
    "backslash": 28,
    "right_square_bracket": 29,
    "circumflex_accent": 30,
    "underscore": 31,
}
_MODIFIERS = {"shift": 1, "alt": 2, "ctrl": 4}


def _split(key: str) -> tuple[int, str]:
    """Modifier bits and the base key name of a Textual key like `ctrl+shift+up`."""
    *mods, base = key.split("+")
    return sum(_MODIFIERS.get(m, 0) for m in mods), base


def _special(base: str, mods: int, modes: TerminalModes) -> bytes | None:
    param = f"1;{mods + 1}" if mods else ""
    if base in _CURSOR:
        if not mods and modes.app_cursor:
            return f"\x1bO{_CURSOR[base]}".encode()
        return f"\x1b[{param}{_CURSOR[base]}".encode()
    if base in _SS3_F:
        return f"\x1b[{param}{_SS3_F[base]}".encode() if mods else f"\x1bO{_SS3_F[base]}".encode()
    if base in _TILDE:
        suffix = f";{mods + 1}" if mods else ""
        return f"\x1b[{_TILDE[base]}{suffix}~".encode()
    return None


def encode_key(key: str, character: str | None, modes: TerminalModes) -> bytes | None:
    """Bytes for one key press, or None when a terminal would send nothing."""
    mods, base = _split(key)
    if key == "shift+tab":
        return b"\x1b[Z"
    special = _special(base, mods, modes)
    if special is not None:
        return special
    alt = b"\x1b" if mods & 2 else b""
    if mods & 4:
        if len(base) == 1 and base.isalpha():
            return alt + bytes([ord(base.lower()) & 0x1F])
        if base in _CTRL_SYMBOLS:
            return alt + bytes([_CTRL_SYMBOLS[base]])
        if base in _PLAIN:
            return alt + _PLAIN[base]
        return None
    if character and character.isprintable():
        return alt + character.encode()
    if base in _PLAIN:
        return alt + _PLAIN[base]
    if len(base) == 1:
        return alt + base.encode()
    return None


def encode_paste(text: str, modes: TerminalModes) -> bytes:
    """Pasted text as a terminal sends it: newlines as CR, bracketed when enabled."""
    data = text.replace("\r\n", "\r").replace("\n", "\r").encode()
    if modes.bracketed_paste:
        return b"\x1b[200~" + data.replace(b"\x1b[201~", b"") + b"\x1b[201~"
    return data


_WANTS: dict[str, frozenset[MouseAction]] = {
    "off": frozenset(),
    "x10": frozenset({"press"}),
    "normal": frozenset({"press", "release", "wheel-up", "wheel-down"}),
}
_WANTS["button"] = _WANTS["normal"] | {"motion"}
_WANTS["any"] = _WANTS["button"]


def encode_mouse(
    action: MouseAction,
    button: int,
    x: int,
    y: int,
    modes: TerminalModes,
    *,
    held: bool = False,
    shift: bool = False,
    alt: bool = False,
    ctrl: bool = False,
) -> bytes | None:
    """A mouse report (0-based cell x, y) in the program's mode, or None if not wanted."""
    if action not in _WANTS[modes.mouse]:
        return None
    if action == "motion" and modes.mouse == "button" and not held:
        return None
    code = {"wheel-up": 64, "wheel-down": 65}.get(action, max(button - 1, 0))
    if action == "motion":
        code = (code if held else 3) + 32
    code |= (4 if shift else 0) | (8 if alt else 0) | (16 if ctrl else 0)
    if modes.mouse_sgr:
        final = "m" if action == "release" else "M"
        return f"\x1b[<{code};{x + 1};{y + 1}{final}".encode()
    if action == "release":
        code = 3 | (code & ~3)
    if x > 222 or y > 222:
        return None  # the legacy encoding cannot express it
    return bytes([0x1B, 0x5B, 0x4D, 32 + code, 33 + x, 33 + y])
