"""Which columns an update keeps: the row's first-entry audit fields, unless it sends them."""

KEEP_ON_UPDATE = ("entry_date", "entry_user")
"""Columns holding None when the row did not send them: an insert takes the value from the
strategy's `inserts`, an update keeps the stored one."""
