"""One stage class per file; each docstring says what it reads and writes on the bundle."""
