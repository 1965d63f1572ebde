"""``mdde-stream reproduce``: the thesis's published tables beside ours (§5.2 edge cases, Tables 5.12-5.14)."""
