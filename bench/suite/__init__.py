"""The suite file: its typed model, its cells and its deployment checks."""
