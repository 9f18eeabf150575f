"""Modal screens: help, confirmation, the fork dialog and the search prompt."""
