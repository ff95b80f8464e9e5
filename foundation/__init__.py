"""Infrastructure every ganas package shares: the error root, a generic registry, atomic writes,
hashing, weight-file discovery and stop requests made by signals. A leaf: it imports no other ganas
package and, at import time, nothing outside the standard library."""
