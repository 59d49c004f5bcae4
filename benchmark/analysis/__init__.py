"""From responses and predictions to statistics and the report."""
