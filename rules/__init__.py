"""The rule language: text -> checked rule tree -> SQL (batch) and Python (one customer) back ends."""
