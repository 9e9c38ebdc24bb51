"""The Docker Engine API (1.24 to 1.41), translated thinly onto berth.service."""
