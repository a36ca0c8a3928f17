"""Built-in device presets (TOML files in this folder), registered via entry point."""

from pathlib import Path

PRESET_DIR = Path(__file__).parent
