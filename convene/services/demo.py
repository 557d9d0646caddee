"""The demo convening (placeholder until the loader lands)."""
DEMO_ORGANIZER_EMAIL = "organizer@convene.example"
DEMO_ORGANIZER_PASSWORD = "convene-demo"


def load_demo():
    raise NotImplementedError
