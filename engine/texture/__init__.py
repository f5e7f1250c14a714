"""Textures: the UV albedo baked from the photos."""
