"""Resource health: rules, evaluation, history and the status page."""
