"""textgen package."""
