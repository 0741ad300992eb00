"""How numbers read on a page: quantities and rates without a float's or a Decimal's
artefacts ("10", "2.5", "17.5" — never "1E+1" or "2.50000")."""

from decimal import Decimal


def number(value) -> str:
    """A quantity or a percentage in plain notation, with no trailing zeros."""
    if value is None:
        return ""
    text = f"{Decimal(value):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
