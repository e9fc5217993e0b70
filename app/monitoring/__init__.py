"""In-app monitoring: recorder, alert rules, evaluator and trends."""
