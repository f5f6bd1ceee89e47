"""Form pieces that both the public flow and the back office use."""

from wtforms.fields.choices import SelectChoice


def options(pairs) -> list[SelectChoice]:
    """Select and radio options as WTForms 3.3 wants them (plain tuples are deprecated)."""
    return [SelectChoice(value, label) for value, label in pairs]
