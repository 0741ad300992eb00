"""How an invoice (or credit note) is addressed: a format of tags, one address line per line.

A format is plain text such as::

    [landlord_name] c/o [customer_name]
    [customer_address_line_1]
    [customer_town]
    [customer_postcode]

Each ``[tag]`` is replaced by a value of the invoice (``TAGS`` lists them). Blank tags are
skipped, with the literal text that only makes sense next to them:

- text before a line's first tag belongs to that tag ("FAO [contact_name]"),
- text after a line's last tag belongs to that tag ("[customer_name] (tenant)"),
- text between two tags is a joiner ("c/o", ", ") kept only when there is a value on both
  sides of it; where blank tags lie between two values, the joiner just before the later
  value joins them ("[a], [b], [c]" with b blank reads "A, C"). So "[landlord_name] c/o [customer_name]" reads "Jane Lord c/o Bob Tenant",
  or just "Bob Tenant" when the work address has no landlord: a dangling "c/o Bob Tenant"
  would tell the post office to deliver to someone who is not named.

A line left empty is dropped; a line with no tag at all ("Private & confidential") is kept.
Tags are matched without regard to case. The landlord is the landlord of the invoice's work
address. No Flask here: the admin, the portal, the PDFs and the tests all call this.
"""

import re
from collections.abc import Callable

DEFAULT_FORMAT = "\n".join(
    (
        "[customer_name]",
        "[customer_address_line_1]",
        "[customer_address_line_2]",
        "[customer_town]",
        "[customer_county]",
        "[customer_postcode]",
    )
)

_ADDRESS_PARTS = (
    ("address_line_1", "address line 1"),
    ("address_line_2", "address line 2"),
    ("town", "town"),
    ("county", "county"),
    ("postcode", "postcode"),
)


def _address_tags(prefix: str, owner: str) -> dict[str, str]:
    return {f"{prefix}_{field}": f"The {owner}'s {label}" for field, label in _ADDRESS_PARTS}


# Tag -> what it stands for (the address-format field's help text lists these).
TAGS: dict[str, str] = {
    "customer_name": "The customer's name (company name for a company)",
    **_address_tags("customer", "customer"),
    "contact_name": "The name of the customer's contact the invoice is for",
    "landlord_name": "The name of the landlord of the work address",
    **_address_tags("landlord", "landlord"),
    "work_address_line_1": "The work address's line 1",
    "work_address_line_2": "The work address's line 2",
    "work_address_town": "The work address's town",
    "work_address_county": "The work address's county",
    "work_address_postcode": "The work address's postcode",
    "occupier_name": "The name of the occupier of the work address",
}

_TAG = re.compile(r"\[([^\[\]\n]*)\]")


def _tag_help() -> str:
    return ", ".join(f"[{tag}]" for tag in TAGS)


def validate_address_format(text: str | None) -> str:
    """The format as it is stored (line ends normalised, blank lines removed), or raise
    ValueError naming the first unknown tag. An empty result means "the default"."""
    lines = [line.rstrip() for line in (text or "").replace("\r\n", "\n").split("\n")]
    for line in lines:
        for match in _TAG.finditer(line):
            if match.group(1).strip().lower() not in TAGS:
                raise ValueError(f"Unknown tag [{match.group(1)}]; use one of {_tag_help()}.")
    return "\n".join(line for line in lines if line.strip())


def _text(value) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _address_values(prefix: str, owner) -> dict[str, str]:
    return {
        f"{prefix}_{field}": _text(getattr(owner, field, None) if owner is not None else None)
        for field, _ in _ADDRESS_PARTS
    }


def tag_values(invoice) -> dict[str, str]:
    """Every tag's value for ``invoice`` ("" when it has none). Loads the customer, contact,
    work address and landlord relationships of the invoice; a document without a contact or
    work address (a credit note) has those tags blank."""
    customer = invoice.customer
    work = getattr(invoice, "work_address", None)
    contact = getattr(invoice, "contact", None)
    landlord = work.landlord if work is not None else None
    occupier = (
        " ".join(
            p for p in (work.occupier_title, work.occupier_first_name, work.occupier_surname) if p
        )
        if work is not None
        else ""
    )
    values = {
        "customer_name": _text(customer.display_name if customer is not None else None),
        **_address_values("customer", customer),
        "contact_name": _text(str(contact) if contact is not None else None),
        "landlord_name": _text(landlord.display_name if landlord is not None else None),
        **_address_values("landlord", landlord),
        **_address_values("work_address", work),
        "occupier_name": _text(occupier),
    }
    # The work address's own fields are named address_line_1 ..., its tags work_address_*:
    values["work_address_line_1"] = values.pop("work_address_address_line_1")
    values["work_address_line_2"] = values.pop("work_address_address_line_2")
    return values


def _render_line(line: str, value_of: Callable[[str], str]) -> str:
    """One line with the rules of the module docstring."""
    parts = _TAG.split(line)  # literal, tag, literal, tag, ..., literal
    literals, tags = parts[0::2], [value_of(t.strip().lower()) for t in parts[1::2]]
    if not tags:
        return line.strip()
    filled = [index for index, value in enumerate(tags) if value]
    if not filled:
        return ""
    out = [literals[filled[0]] if filled[0] == 0 else ""]
    for position, index in enumerate(filled):
        if position > 0:
            out.append(literals[index])  # the joiner just before this value
        out.append(tags[index])
    if filled[-1] == len(tags) - 1:
        out.append(literals[-1])
    return " ".join("".join(out).split())


def format_address(address_format: str | None, values: dict[str, str]) -> list[str]:
    """The address lines of ``address_format`` (the default when blank) filled from
    ``values``; an unknown tag reads as blank (formats are validated when saved)."""
    text = address_format if address_format and address_format.strip() else DEFAULT_FORMAT
    lines = (_render_line(line, lambda tag: values.get(tag, "")) for line in text.splitlines())
    return [line for line in lines if line]


def format_invoice_address(invoice) -> list[str]:
    """The lines an invoice (or anything with the same relationships) is addressed to."""
    return format_address(getattr(invoice, "address_format", None), tag_values(invoice))


def customer_address(customer) -> list[str]:
    """A customer's own name and address in the default format (statements)."""
    values = {"customer_name": _text(customer.display_name), **_address_values("customer",
                                                                                customer)}
    return format_address(DEFAULT_FORMAT, values)
