"""Running experiments: local or cluster Ray, MLflow tracking, run folders."""
