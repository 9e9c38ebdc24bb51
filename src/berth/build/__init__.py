"""Image builds from Dockerfiles: parse (dockerfile.py), filter the context (ignore.py), run
each step in a real Berth container and turn its changes into layers (builder.py)."""
