"""Business actions: one verb_noun function per action, each one unit of work."""
