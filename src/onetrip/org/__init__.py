"""Organisation: regions, hospitals, locations, departments, practitioners, working calendar."""
