"""Data sets: seeded synthetic generators and real ones shipped inside PyPI packages."""
