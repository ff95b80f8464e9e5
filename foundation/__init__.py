"""Infrastructure every ganas package shares: the error root, a generic registry, atomic writes,
hashing and weight-file discovery. A leaf: it imports no other ganas package and, at import
time, nothing outside the standard library."""
