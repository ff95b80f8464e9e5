"""The web dashboard over the search store."""
