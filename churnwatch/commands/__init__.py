"""One command module per stage; each has ``register(app)``."""
