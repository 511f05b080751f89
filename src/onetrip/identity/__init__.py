"""Identity: who is acting (tokens, staff, patients) and what each role may do."""
